"""On-call's restore (maintenance/restore.py) on real tables under a temp LAKEHOUSE_ROOT: who and
why recorded, vacuumed versions refused, and after a restore the next run brings back what came
after the restored version, exactly once, with the downstream tables named."""

from __future__ import annotations

import pyarrow as pa
import pytest
from deltalake import DeltaTable

import include.lakehouse.maintenance.operations as m
from include.lakehouse.errors import LakehouseError, RestoredUpstreamError, VersionNotAvailableError
from include.lakehouse.tables.registry import get_table
from include.lakehouse.maintenance.restore import restore_to
from tests.maintenance.test_policy import log_rows, silver_orders


def test_restore_returns_earlier_contents_and_records_who_and_why(lakehouse_root):
    uri = silver_orders(lakehouse_root, 3)
    DeltaTable(uri).delete("order_id < 100")
    dry = restore_to("silver/orders", version=2, reason="check", dry_run=True, run_id="r0")
    assert dry["status"] == "dry_run" and DeltaTable(uri).count() == 500
    row = restore_to("silver/orders", version=2, reason="bad delete in INC-42", requested_by="alice", run_id="r1")
    assert DeltaTable(uri).count() == 600 and row["status"] == "success"
    logged = [r for r in log_rows() if r["operation"] == "restore"]
    assert {(r["status"], r["requested_by"], r["reason"]) for r in logged} == {
        ("dry_run", None, "check"), ("success", "alice", "bad delete in INC-42")}
    with pytest.raises(LakehouseError, match="give a reason"):
        restore_to("silver/orders", version=1, reason=" ")


def test_restore_refuses_a_vacuumed_version(lakehouse_root):
    uri = silver_orders(lakehouse_root, 3)
    m.compact(uri)
    m.vacuum(uri, retention_hours=0, override_reason="test")
    with pytest.raises(VersionNotAvailableError, match="was vacuumed"):
        restore_to("silver/orders", version=1, reason="oops")


# --- restore, then rerun: what came after the restored version flows back, exactly once ---

def bronze_file_rows(root) -> list[tuple]:
    table = DeltaTable(str(root / "bronze" / "orders")).to_pyarrow_table()
    keep = [c for c in table.column_names if c not in ("_ingested_at", "_batch_id")]
    return sorted(tuple(str(v) for v in r.values()) for r in table.select(keep).to_pylist())


def test_restored_bronze_files_load_again_on_the_next_run_exactly_once(lakehouse_root):
    from include.lakehouse.ingest.files import ingest_new_files, landing_dir
    from include.lakehouse.source.generator import ShopSource

    shop = ShopSource(scale=0.1)
    for day in ["2024-01-02", "2024-01-03", "2024-01-04"]:
        shop.write_landing_file(landing_dir("orders"), day, "csv", malformed_share=0)
        ingest_new_files("orders")
    everything = bronze_file_rows(lakehouse_root)
    first_file = DeltaTable(str(lakehouse_root / "bronze" / "orders")).version() - 2
    row = restore_to("bronze/orders", version=first_file, reason="bad load", run_id="r1")
    assert len(bronze_file_rows(lakehouse_root)) < len(everything)
    assert len(row["positions_reset"]) == 2  # the two later files are forgotten
    assert len(ingest_new_files("orders")) == 2 and ingest_new_files("orders") == []
    assert bronze_file_rows(lakehouse_root) == everything


def test_restored_bronze_topic_reads_its_later_offsets_again_exactly_once(lakehouse_root, kafka_broker):
    import json

    from confluent_kafka import Producer

    from include.lakehouse.ingest.kafka import ingest_topic

    topic = "shop.order_events"

    def produce(start: int, count: int) -> None:
        producer = Producer(kafka_broker)
        for i in range(start, start + count):
            producer.produce(topic, key=str(i % 17), value=json.dumps({"n": i}))
        producer.flush(30)

    def numbers() -> list[int]:
        payloads = DeltaTable(str(lakehouse_root / "bronze" / topic)).to_pyarrow_table().column("payload")
        return sorted(json.loads(p)["n"] for p in payloads.to_pylist())

    produce(0, 150)
    first = ingest_topic(topic, kafka_broker)
    after_first = numbers()
    produce(150, 150)
    ingest_topic(topic, kafka_broker)
    assert numbers() == list(range(300))
    restore_to(f"bronze/{topic}", version=first["version"], reason="bad batch", run_id="r1")
    assert numbers() == after_first
    ingest_topic(topic, kafka_broker)
    assert numbers() == list(range(300))
    restore_to(f"bronze/{topic}", version=0, reason="start over", run_id="r2")  # every partition forgotten
    assert numbers() == []
    ingest_topic(topic, kafka_broker)
    assert numbers() == list(range(300))


def test_restored_silver_reapplies_later_bronze_changes_and_names_gold_to_restore(lakehouse_root):
    import json
    from datetime import datetime, timezone

    from include.lakehouse.cdc.flow import apply_bronze_changes
    from include.lakehouse.dimensions.build import build_dimension
    from include.lakehouse.ingest.kafka import BRONZE_SCHEMA
    from include.lakehouse.source.generator import ShopSource
    from include.lakehouse.tables.delta import append

    shop = ShopSource(scale=0.1)
    topic, days = "shop.public.customers", ["2024-01-01", "2024-01-02", "2024-01-03"]

    def silver() -> dict[int, dict]:
        table = DeltaTable(get_table("silver/customers").uri).to_pyarrow_table()
        return {r["customer_id"]: r for r in table.select(shop.customers().column_names).to_pylist()}

    versions = []
    for day in days:
        now = datetime.now(timezone.utc)
        append(f"bronze/{topic}", pa.Table.from_pylist(
            [{"key": None, "partition": 0, "offset": i, "timestamp": now, "payload": json.dumps(e),
              "tombstone": False, "_ingested_at": now, "_batch_id": day}
             for i, e in enumerate(shop.customer_changes(day))], schema=BRONZE_SCHEMA))
        apply_bronze_changes("customers")
        build_dimension("dim_customer")
        versions.append(DeltaTable(get_table("silver/customers").uri).version())
    def history() -> list[tuple]:
        rows = DeltaTable(get_table("gold/dim_customer").uri).to_pyarrow_table().to_pylist()
        return sorted((r["customer_id"], r["city"], r["segment"], r["valid_from"], r["valid_to"], r["is_current"],
                       r["is_deleted"]) for r in rows)

    latest, dimension = silver(), history()
    assert latest == {r["customer_id"]: r for r in shop.customers(days[-1]).to_pylist()}
    dim = DeltaTable(get_table("gold/dim_customer").uri)
    row = restore_to("silver/customers", version=versions[0], reason="bad merge", run_id="r1")
    assert silver() != latest
    assert list(row["positions_reset"]) == [f"cdc_apply.bronze/{topic}"]
    [gold] = row["downstream"]
    assert gold["table"] == "gold/dim_customer" and gold["consumed_up_to"] == versions[-1]
    assert gold["restore_to_version"] is not None and gold["restore_to_version"] < dim.version()
    assert "gold/dim_customer" in row["detail"]
    apply_bronze_changes("customers")
    assert silver() == latest
    with pytest.raises(RestoredUpstreamError, match=r"silver/customers/? was restored at version \d+ to version"):  # never reads through it
        build_dimension("dim_customer")
    restore_to("gold/dim_customer", version=gold["restore_to_version"], reason="follow silver", run_id="r2")
    build_dimension("dim_customer")
    assert history() == dimension


def test_restore_table_dag_defaults_list_versions_and_a_timestamp_is_never_ignored(lakehouse_root):
    from datetime import datetime, timezone
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag

    dags = Path(__file__).resolve().parents[2] / "dags"
    params = DagBag(dag_folder=str(dags / "restore_table.py")).dags["restore_table"].params.dump()
    assert params["version"] is None and params["timestamp"] is None and params["dry_run"] is True
    uri = silver_orders(lakehouse_root, 3)
    listing = restore_to("silver/orders", version=params["version"], timestamp=params["timestamp"],
                         reason=params["reason"], dry_run=params["dry_run"], run_id="r0")
    assert listing["status"] == "dry_run" and "v2" in listing["detail"] and DeltaTable(uri).version() == 2
    first = m.history(uri)[-1]["timestamp"] / 1000
    at_first = datetime.fromtimestamp(first, timezone.utc).isoformat()
    with pytest.raises(LakehouseError, match="not both"):
        restore_to("silver/orders", version=0, timestamp=at_first, reason="the old DAG default", run_id="r1")
    with pytest.raises(VersionNotAvailableError, match="before the table's first version"):
        restore_to("silver/orders", timestamp="2001-01-01T00:00:00", reason="too early", run_id="r2")
    assert restore_to("silver/orders", timestamp=at_first, reason="back to the start", run_id="r3")["version_after"] == 3
    assert DeltaTable(uri).count() == 200
