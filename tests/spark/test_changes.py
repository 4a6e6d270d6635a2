"""CDC apply and SCD2 on Spark against the delta-rs path: same random streams, identical tables.

The random Debezium streams of tests/dimensions/test_build_properties.py run through the whole
chain (bronze -> silver -> gold) twice, once per engine, in two lakehouses; silver, its tombstones, the
quarantine and gold must be equal row for row and column for column (surrogate keys and row
hashes included: both engines plan with the same code), and both keep the chain's invariants.
Sail (the local engine, Delta built in) runs in a spawned child (a process with a Connect
session refuses classic sessions); JVM Spark (no Delta jars here: the bridge) runs in the slow
set. The engine switch is configuration: a registry entry or LAKEHOUSE_CHANGES_ENGINE.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

pytest.importorskip("pyspark")

from tests.dimensions.test_build_properties import fresh_lakehouse, land, play_chain, streams  # noqa: E402
from tests.processes import race  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TOPIC = "shop.public.customers"
TABLES = ["silver/customers", "silver/customers__cdc_tombstones", f"quarantine/cdc.{TOPIC}", "gold/dim_customer"]


def table_rows(name: str) -> list[tuple]:
    from deltalake import DeltaTable

    uri = f"{os.environ['LAKEHOUSE_ROOT']}/{name}"
    if not DeltaTable.is_deltatable(uri):
        return []
    data = DeltaTable(uri).to_pyarrow_table()
    data = data.select(sorted(data.column_names))
    return [tuple(data.column_names)] + sorted(tuple(str(v) for v in row.values()) for row in data.to_pylist())


def run_chain(events, batches, gold_after, spark) -> dict[str, list[tuple]]:
    """The chain over one stream in a fresh lakehouse (invariants checked); every table's rows."""
    with fresh_lakehouse():
        play_chain(events, batches, gold_after, spark=spark)
        return {name: table_rows(name) for name in TABLES}


def compare_engines(spark, examples: int) -> int:
    """Both engines on `examples` random streams; returns how many ran."""
    ran = []

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(streams())
    def same_tables(stream):
        reference = run_chain(*stream, spark=None)
        on_spark = run_chain(*stream, spark=spark)
        for name in TABLES:
            assert on_spark[name] == reference[name], (name, on_spark[name], reference[name])
        ran.append(1)

    same_tables()
    return len(ran)


def compare_on_connect(url: str, examples: int) -> int:
    from include.lakehouse.spark.session import get_spark

    return compare_engines(get_spark("test_spark_changes", remote=url), examples)


def on_child(target: str, *args, timeout: float = 900):
    [(status, value)] = race(f"tests.spark.test_changes.{target}", [(args, {})], timeout=timeout)
    assert status == "ok", value
    return value


def test_spark_chain_makes_the_same_tables_as_delta_rs_on_random_streams(sail_url):
    assert on_child("compare_on_connect", sail_url, 6) == 6


@pytest.mark.slow
def test_spark_chain_makes_the_same_tables_as_delta_rs_on_many_random_streams(sail_url):
    assert on_child("compare_on_connect", sail_url, 40, timeout=3600) == 40


@pytest.mark.slow
def test_jvm_spark_through_the_bridge_makes_the_same_tables_as_delta_rs():
    from include.lakehouse.spark.session import get_spark

    spark = get_spark("test_spark_changes_jvm", master="local[2]", delta="bridge")
    try:
        assert compare_engines(spark, 4) == 4
    finally:
        spark.stop()


# --------------------------------------------------------------------------- the switch
def registry_module():
    """The module that reads tables.yaml (wherever the layout puts it)."""
    from include.lakehouse.tables.registry import load_registry

    return sys.modules[load_registry.__module__]


def registry_with(tmp_path: Path, entries: str) -> Path:
    path = tmp_path / "tables.yaml"
    path.write_text(registry_module().REGISTRY_FILE.read_text() + entries)
    return path


def apply_with_registry(url: str, registry: str, root: str) -> list[dict]:
    """Two CDC batches and a dimension build with the registry at `registry`; the results."""
    from datetime import datetime, timezone

    from include.lakehouse.cdc.flow import apply_bronze_changes
    from include.lakehouse.dimensions.build import build_dimension
    from include.lakehouse.source.generator import debezium_envelope

    os.environ.update({"LAKEHOUSE_ROOT": root, "LAKEHOUSE_SPARK_CONNECT_URL": url})  # as `make demo` announces Sail
    os.environ.pop("SPARK_REMOTE", None)
    registry_module().REGISTRY_FILE = Path(registry)
    registry_module().load_registry.cache_clear()
    at = datetime(2024, 1, 1, tzinfo=timezone.utc)
    rows = [{"customer_id": k, "name": "Ann", "email": "a@x", "city": "Oslo", "country": "NO", "segment": "s",
             "created_at": at, "updated_at": at} for k in (1, 2, 3, 4)]
    land([debezium_envelope("customers", "c", None, r, at, 100 + r["customer_id"]) for r in rows], 0)
    results = [apply_bronze_changes("customers")]
    moved = {**rows[0], "city": "Rome", "updated_at": at.replace(hour=5)}
    land([debezium_envelope("customers", "u", rows[0], moved, moved["updated_at"], 200)], 4)
    results.append(apply_bronze_changes("customers"))
    results.append(build_dimension("dim_customer"))
    return results


def test_the_engine_is_configuration_per_table(sail_url, tmp_path):
    """engine: spark on gold only; spark_from_rows on silver switches it once it holds 3 rows; the
    task finds the warm local engine the way SparkJobOperator does."""
    registry = registry_with(tmp_path, """
  silver/customers:
    keys: [customer_id]
    change_data_feed: true
    spark_from_rows: 3
""").read_text().replace("""  gold/dim_customer:
    description""", """  gold/dim_customer:
    engine: spark
    description""")
    (tmp_path / "tables.yaml").write_text(registry)
    first, second, dimension = on_child("apply_with_registry", sail_url, str(tmp_path / "tables.yaml"),
                                        str(tmp_path / "lakehouse"))
    assert first.get("details", {}).get("engine") is None and first["rows_inserted"] == 4  # empty table: delta-rs
    assert second["details"]["engine"] == "spark" and second["rows_updated"] == 1  # 4 rows >= 3: Spark
    assert dimension["details"]["engine"] == "spark" and dimension["rows_inserted"] == 5


def test_lakehouse_changes_engine_overrides_every_table(monkeypatch):
    from include.lakehouse.errors import LakehouseError
    from include.lakehouse.spark.changes import engine_for

    assert engine_for("silver/customers") == "delta-rs"
    monkeypatch.setenv("LAKEHOUSE_CHANGES_ENGINE", "spark")
    assert engine_for("silver/customers") == engine_for("gold/dim_customer") == "spark"
    monkeypatch.setenv("LAKEHOUSE_CHANGES_ENGINE", "dask")
    with pytest.raises(LakehouseError, match="LAKEHOUSE_CHANGES_ENGINE"):
        engine_for("silver/customers")


@pytest.mark.parametrize("entry, message", [
    ("engine: flink", "engine"),
    ("engine: spark\n    spark_from_rows: 10", "spark_from_rows"),
    ("spark_from_rows: 0", "spark_from_rows"),
])
def test_a_wrong_engine_setting_fails_at_load_naming_the_key(tmp_path, entry, message):
    from include.lakehouse.errors import ConfigError
    from include.lakehouse.tables.registry import load_registry

    path = registry_with(tmp_path, f"\n  silver/extra:\n    {entry}\n")
    with pytest.raises(ConfigError, match=message):
        load_registry(str(path))


def test_the_debezium_and_dbt_snapshot_behaviours_hold_on_spark(sail_url):
    """The flow's own tests (Debezium replays, the dbt timestamp snapshot, deletes at source
    time, schema changes, quarantine) with every table's changes applied on Spark."""
    selected = ("replay_with_reorder or dbt_timestamp_snapshot or delete_closes or schema_change "
                "or changes_nothing or one_bad_value or without_any_value")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/cdc/test_flow.py",
         "tests/dimensions/test_build.py", "-k", selected], cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={**os.environ, "LAKEHOUSE_CHANGES_ENGINE": "spark", "SPARK_REMOTE": sail_url})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert re.search(r"\b8 passed", run.stdout), run.stdout[-500:]


@pytest.mark.slow
def test_every_cdc_flow_behaviour_holds_on_spark(sail_url):
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/cdc/test_flow.py",
         "tests/dimensions/test_build.py", "tests/dimensions/test_build_properties.py"], cwd=ROOT,
        capture_output=True, text=True, timeout=3600,
        env={**os.environ, "LAKEHOUSE_CHANGES_ENGINE": "spark", "SPARK_REMOTE": sail_url})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
