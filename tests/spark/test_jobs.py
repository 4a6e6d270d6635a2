"""Every Spark job on two engines, and Delta written natively vs through the table layer.

Sail (Delta built in: the bridge's `format("delta")` / `MERGE INTO` branch) runs in a
spawned process against the `sail_url` server; JVM Spark (no Delta jars here: the jar-free
branch) runs classic in this process. Same inputs, same job code: the output tables must be
identical, or the test names the engine, table and first differing rows.
"""

from __future__ import annotations

import os
from datetime import date, timedelta

import pytest

pytest.importorskip("pyspark")

from include.lakehouse.spark.jobs import JOBS_DIR, load_job  # noqa: E402
from tests.processes import race  # noqa: E402

SHOP_DAYS = [(date(2024, 1, 1) + timedelta(days=n)).isoformat() for n in range(40)]


# --------------------------------------------------------------------------- inputs per job
def smoke_inputs() -> None:
    from include.lakehouse.quality.smoke import append_smoke_orders

    for ds in ("2024-01-03", "2024-01-04"):
        append_smoke_orders(ds)


def feature_inputs() -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    from include.lakehouse.dimensions.scd2 import apply_scd2
    from include.lakehouse.source.generator import ShopSource
    from include.lakehouse.tables.registry import get_table

    shop = ShopSource(scale=0.05)
    write_deltalake(get_table("silver/orders").uri, pa.concat_tables([shop.orders(d) for d in SHOP_DAYS]))
    import json

    events = [e for d in SHOP_DAYS[-35:] for e in shop.order_events(d)]
    events.append(None)  # a tombstone: no payload
    write_deltalake(get_table("bronze/shop.order_events").uri, pa.table({
        "payload": pa.array([json.dumps(e) if e else None for e in events], pa.string()),
        "tombstone": pa.array([e is None for e in events])}))
    apply_scd2("gold/dim_customer", shop.customers(SHOP_DAYS[-1]), keys=["customer_id"],
               tracked=["city", "country", "segment", "email"], type1=["name"], effective_column="updated_at",
               surrogate_key="customer_sk")


def cdc_inputs() -> None:
    """Debezium creates, updates and a delete of customers landed in bronze, applied by nothing yet."""
    from datetime import datetime, timezone

    from include.lakehouse.source.generator import debezium_envelope
    from tests.dimensions.test_build_properties import land

    at = datetime(2024, 1, 1, tzinfo=timezone.utc)
    rows = [{"customer_id": k, "name": f"n{k}", "email": f"{k}@x", "city": "Oslo", "country": "NO",
             "segment": "s", "created_at": at, "updated_at": at} for k in range(1, 6)]
    moved = {**rows[0], "city": "Rome", "updated_at": at.replace(hour=3)}
    land([debezium_envelope("customers", "c", None, r, at, 100 + r["customer_id"]) for r in rows]
         + [debezium_envelope("customers", "u", rows[0], moved, moved["updated_at"], 300),
            debezium_envelope("customers", "c", None, rows[0], at, 101),  # redelivered, older: no effect
            debezium_envelope("customers", "d", rows[1], None, at.replace(hour=4), 301)], 0)


def scd2_inputs() -> None:
    from include.lakehouse.cdc.flow import apply_bronze_changes

    cdc_inputs()
    apply_bronze_changes("customers")


def maintenance_inputs() -> None:
    from include.lakehouse.cdc.flow import apply_bronze_changes
    from include.lakehouse.dimensions.build import build_dimension

    scd2_inputs()
    build_dimension("dim_customer")


# job -> (inputs, args, output table). A new job file must add its row here: the test below fails otherwise.
JOB_CASES = {
    "smoke_revenue_by_status": (smoke_inputs, [], "gold/smoke_revenue_by_status"),
    "customer_features": (feature_inputs, [SHOP_DAYS[-1], SHOP_DAYS[-8]], "features/customer_features"),
    "cdc_apply": (cdc_inputs, ["customers"], "silver/customers"),
    "scd2": (scd2_inputs, ["dim_customer"], "gold/dim_customer"),
    "maintenance": (maintenance_inputs, ["gold/dim_customer"], "gold/dim_customer"),
}


def table_rows(name: str) -> tuple[list[str], list[tuple]]:
    """(schema as text, rows sorted) of a table read by delta-rs: what every reader sees."""
    from include.lakehouse.tables.delta import open_table

    dt = open_table(name)
    data = dt.to_pyarrow_table()
    data = data.select(sorted(data.column_names))
    schema = [f"{f.name}: {f.type}" for f in data.schema]
    return schema, sorted(tuple(row.values()) for row in data.to_pylist())


# --------------------------------------------------------------------------- run in a Sail child
def run_job_on_connect(url: str, root: str, job: str, args: list[str]) -> dict:
    os.environ["LAKEHOUSE_ROOT"] = root
    from include.lakehouse.spark.session import get_spark, native_delta

    spark = get_spark(app_name=job, remote=url)
    result = load_job(job).main(spark, args) or {}
    return {"result": result, "native_delta": native_delta(spark)}


def on_sail(target: str, *args):
    [(status, value)] = race(f"tests.spark.test_jobs.{target}", [(args, {})], timeout=240)
    assert status == "ok", value
    return value


@pytest.fixture(scope="module")
def jvm_spark():
    from include.lakehouse.spark.session import get_spark

    session = get_spark("test_engines", master="local[1]", delta="auto")
    yield session
    session.stop()


# Streaming jobs run on JVM Spark only: Sail (pysail 0.7.2) cannot run foreachBatch ("missing
# argument: Python UDF output type"); SparkJobOperator(warm_connect=False) spark-submits them, and
# tests/streaming runs them end to end (exactly once under SIGKILL, late data, the change feed).
JVM_ONLY = {"stream_order_events", "stream_customer_order_stats"}


def test_every_job_file_has_a_two_engine_case():
    jobs = {p.stem for p in JOBS_DIR.glob("*.py") if not p.name.startswith("_")}
    assert JVM_ONLY <= jobs, f"streaming job(s) {sorted(JVM_ONLY - jobs)} gone: update JVM_ONLY"
    assert jobs - JVM_ONLY == set(JOB_CASES), f"add the job(s) {sorted(jobs - JVM_ONLY - set(JOB_CASES))} to JOB_CASES"


@pytest.mark.parametrize("job", sorted(JOB_CASES))
def test_job_gives_identical_output_on_sail_and_jvm_spark(job, sail_url, jvm_spark, tmp_path, monkeypatch):
    from include.lakehouse.spark.session import native_delta

    inputs, args, output = JOB_CASES[job]
    outputs = {}
    for engine in ("sail", "jvm"):
        root = tmp_path / engine
        root.mkdir()
        monkeypatch.setenv("LAKEHOUSE_ROOT", str(root))
        inputs()
        if engine == "sail":
            ran = on_sail("run_job_on_connect", sail_url, str(root), job, [str(a) for a in args])
            assert ran["native_delta"], "Sail has Delta built in: the native branch must run"
        else:
            assert not native_delta(jvm_spark), "no Delta jars here: JVM Spark must take the bridge"
            load_job(job).main(jvm_spark, [str(a) for a in args])
        outputs[engine] = table_rows(output)
    (sail_schema, sail_rows), (jvm_schema, jvm_rows) = outputs["sail"], outputs["jvm"]
    assert sail_schema == jvm_schema, f"{job}: {output} schema differs between engines"
    assert len(sail_rows) == len(jvm_rows) > 0, f"{job}: {output} has {len(sail_rows)} rows on Sail, {len(jvm_rows)} on JVM"
    diff = [(s, j) for s, j in zip(sail_rows, jvm_rows) if s != j]
    assert not diff, f"{job}: {output} differs between Sail and JVM Spark, first rows (sail, jvm): {diff[:3]}"
    if job == "customer_features":  # the event path (from_json, intervals) ran, not only the fallback
        from include.lakehouse.tables.delta import open_table

        assert max(open_table(output).to_pyarrow_table().column("events_30d").to_pylist()) > 0


# --------------------------------------------------------------------------- native vs bridge writes
FRAMES = {
    "day1": [(1, "2024-03-01", "a", 1.5), (2, "2024-03-01", "b", 2.0)],
    "day2": [(3, "2024-03-02", "c", 3.25)],
    "day1_again": [(1, "2024-03-01", "A", 1.5), (4, "2024-03-01", "d", 4.0)],
    "upserts": [(1, "2024-03-01", "AA", 9.0), (5, "2024-03-03", "e", 5.0)],
}
SCHEMA = "id long, day string, name string, score double"


def write_sequence(spark, uri: str) -> list[dict]:
    """The same writes through whichever path the session takes: overwrite two partitions,
    replace one, then merge by key."""
    from pyspark.sql import functions as F

    from include.lakehouse.spark.bridge import write_delta

    def frame(name):
        return spark.createDataFrame(FRAMES[name], SCHEMA).withColumn("day", F.to_date("day"))

    results = []
    for name, day in (("day1", "2024-03-01"), ("day2", "2024-03-02"), ("day1_again", "2024-03-01")):
        results.append(write_delta(frame(name), uri, mode="overwrite_partition", partition={"day": day},
                                   partition_by=["day"]).to_dict())
    results.append(write_delta(frame("upserts"), uri, mode="merge", keys=["id"]).to_dict())
    return results


def write_sequence_on_connect(url: str, uri: str) -> list[dict]:
    from include.lakehouse.spark.session import get_spark

    return write_sequence(get_spark("native_writes", remote=url), uri)


def test_native_delta_writes_and_the_table_layer_make_identical_tables(sail_url, jvm_spark, tmp_path):
    from deltalake import DeltaTable

    native, bridged = str(tmp_path / "native"), str(tmp_path / "bridged")
    native_results = on_sail("write_sequence_on_connect", sail_url, native)
    bridge_results = write_sequence(jvm_spark, bridged)
    assert all(r["details"].get("engine_delta") == "native" for r in native_results)
    assert not any(r["details"].get("engine_delta") for r in bridge_results)
    # the counts the table layer reports, the same from either writer
    for n, b in zip(native_results, bridge_results):
        assert (n["rows_inserted"], n["rows_updated"], n["rows_deleted"]) == \
            (b["rows_inserted"], b["rows_updated"], b["rows_deleted"]), (n, b)
    # Sail's commits are Sail's (not delta-rs'), on a table the table layer created
    history = DeltaTable(native).history()
    assert not str(history[0].get("clientVersion", "")).startswith("delta-rs"), history[0]
    assert DeltaTable(native).metadata().partition_columns == DeltaTable(bridged).metadata().partition_columns == ["day"]
    assert table_rows(native) == table_rows(bridged)
    assert sorted(r["name"] for r in DeltaTable(native).to_pyarrow_table().to_pylist()) == ["AA", "c", "d", "e"]  # day1 replaced, then merged


def test_demo_and_ui_start_the_configured_engine(tmp_path, monkeypatch):
    import socket

    from scripts import spark_engine
    from scripts.local_airflow import components as local_airflow

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("LAKEHOUSE_SPARK_CONNECT_PORT", str(port))
    monkeypatch.delenv("LAKEHOUSE_SPARK_ENGINE", raising=False)
    components = local_airflow.Components({"AIRFLOW_HOME": str(tmp_path)})
    try:
        assert local_airflow.start_spark_engine(components) == "sail"
        assert spark_engine.listening(port)
        assert "sail" in components.procs["spark-connect"].args[0]
    finally:
        components.stop()
    assert not spark_engine.listening(port)
    monkeypatch.setenv("LAKEHOUSE_SPARK_ENGINE", "flink")
    with pytest.raises(ValueError, match="LAKEHOUSE_SPARK_ENGINE"):
        spark_engine.chosen_engine()
