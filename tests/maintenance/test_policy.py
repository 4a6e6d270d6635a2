"""Maintenance by policy (maintenance/policy.py) on real tables under a temp LAKEHOUSE_ROOT; on-call's
restore is tested in tests/maintenance/test_restore.py."""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

import include.lakehouse.maintenance.operations as m
from include.lakehouse.tables.registry import get_table
from include.lakehouse.errors import LakehouseError, RetentionGuardError, UnknownTableError
from include.lakehouse.maintenance.policy import apply_policy


def orders(batch: int, n: int = 200) -> pa.Table:
    rng = np.random.default_rng(batch)
    return pa.table({"order_id": pa.array(np.arange(batch * n, (batch + 1) * n), pa.int64()),
                     "customer_id": pa.array(rng.integers(0, 10_000, n), pa.int64()),
                     "amount": pa.array(rng.uniform(1, 100, n))})


def silver_orders(root, batches: int = 50) -> str:
    uri = get_table("silver/orders").uri
    for b in range(batches):
        write_deltalake(uri, orders(b), mode="append")
    return uri


def log_rows():
    return m.read_table("ops/maintenance_log").to_pylist()


def test_fifty_small_appends_compact_to_target_files_with_identical_contents(lakehouse_root):
    uri = silver_orders(lakehouse_root)
    before = DeltaTable(uri).to_pyarrow_table().sort_by("order_id")
    report = apply_policy("silver/orders")
    assert report["files_before"] == 50 and report["files_after"] == 1
    assert DeltaTable(uri).to_pyarrow_table().sort_by("order_id").equals(before)
    assert "checkpoint" in report["detail"] and "z-order customer_id" in report["detail"]


def test_z_order_makes_point_lookups_read_at_least_5x_fewer_files(tmp_path):
    uri = str(tmp_path / "t")
    for b in range(40):
        write_deltalake(uri, orders(b, 2_000), mode="append")
    probes = [17, 2_500, 5_000, 7_777, 9_990]
    before = sum(m.files_for_point_lookup(uri, "customer_id", p) for p in probes)
    m.z_order(uri, ["customer_id"], target_size_mb=0.1)
    after = sum(m.files_for_point_lookup(uri, "customer_id", p) for p in probes)
    assert len(DeltaTable(uri).file_uris()) >= 5  # enough files for pruning to matter
    assert before >= 5 * after


def test_z_order_runs_only_when_the_table_changed(lakehouse_root):
    silver_orders(lakehouse_root, 5)
    assert "z-order customer_id" in apply_policy("silver/orders")["detail"]
    assert "z-order skipped" in apply_policy("silver/orders")["detail"]
    write_deltalake(get_table("silver/orders").uri, orders(99), mode="append")
    assert "z-order customer_id" in apply_policy("silver/orders")["detail"]


def test_default_vacuum_keeps_time_travel_and_short_retention_needs_a_reason(lakehouse_root):
    uri = silver_orders(lakehouse_root, 5)
    apply_policy("silver/orders")
    assert m.read_table(uri, version=2).num_rows == 600  # compacted-away files are still there
    with pytest.raises(RetentionGuardError, match="silver/orders.*override_reason"):
        apply_policy("silver/orders", retention_hours=1)
    dry = apply_policy("silver/orders", retention_hours=0, dry_run=True, vacuum_override_reason="disk full")
    assert dry["status"] == "dry_run" and len(dry["would_remove"]) >= 5
    assert m.read_table(uri, version=2).num_rows == 600  # the dry run removed nothing


def test_a_concurrent_append_during_optimize_survives(tmp_path):
    uri = str(tmp_path / "t")
    for b in range(60):
        write_deltalake(uri, orders(b, 50), mode="append")
    errors = []

    def writer():
        try:
            for b in range(100, 120):
                write_deltalake(uri, orders(b, 50), mode="append")
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    m.compact(uri)
    m.z_order(uri, ["customer_id"])
    thread.join()
    assert errors == []
    ids = DeltaTable(uri).to_pyarrow_table().column("order_id").to_pylist()
    assert len(ids) == 80 * 50 and len(set(ids)) == len(ids)


def test_bad_settings_name_the_table_and_the_setting(lakehouse_root):
    with pytest.raises(UnknownTableError, match="silver/ordrs"):
        apply_policy("silver/ordrs")
    write_deltalake(get_table("gold/dim_customer").uri, pa.table({"customer_sk": [1], "name": ["x"]}))
    with pytest.raises(LakehouseError, match=r"gold/dim_customer.*customer_id.*z_order_by"):
        apply_policy("gold/dim_customer")
    assert apply_policy("gold/dim_product")["status"] == "skipped"  # not created yet


def test_a_tables_maintenance_opens_it_once_and_decides_as_before(lakehouse_root, monkeypatch):
    """One mapped task per table: opening the table again for every step (stats, compact,
    z-order check, z-order, vacuum, checkpoint, stats) was most of a small table's time."""
    uri = silver_orders(lakehouse_root, 5)
    opened = []
    real_init = DeltaTable.__init__

    def counting_init(self, table_uri, *args, **kwargs):
        opened.append(str(table_uri))
        real_init(self, table_uri, *args, **kwargs)

    monkeypatch.setattr(DeltaTable, "__init__", counting_init)
    report = apply_policy("silver/orders")
    assert sum(1 for u in opened if u.rstrip("/").endswith("silver/orders")) == 1
    assert report["files_before"] == 5 and report["files_after"] == 1
    assert report["version_before"] == 4 and report["version_after"] == 6  # compact, z-order
    assert report["detail"] == ("compact -5/+1 files; z-order customer_id -1/+1; "
                                "vacuum removed 0 file(s) older than 168 h; checkpoint")
    assert DeltaTable(uri).to_pyarrow_table().num_rows == 1_000
    again = apply_policy("silver/orders")
    assert again["version_before"] == again["version_after"] == 6
    assert again["detail"] == ("compact -0/+0 files; z-order skipped (no change since the last one); "
                               "vacuum removed 0 file(s) older than 168 h; checkpoint")


def test_delta_maintenance_maps_one_task_over_each_table_that_exists(lakehouse_root):
    """A registered table not created yet had a mapped task of its own that only said so (in the
    demo's first maintenance, a third of its tasks)."""
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag

    silver_orders(lakehouse_root, 2)
    write_deltalake(str(lakehouse_root / "quarantine" / "dq.silver.orders"), pa.table({"x": [1]}))
    bag = DagBag(str(Path(__file__).resolve().parents[2] / "dags"))
    listed = bag.dags["delta_maintenance"].get_task("list_registered_tables").python_callable()
    assert listed == ["quarantine/dq.silver.orders", "silver/orders"]
