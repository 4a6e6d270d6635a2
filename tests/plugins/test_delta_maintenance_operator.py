"""DeltaMaintenanceOperator logs every run, success or failure, to ops/maintenance_log."""

from __future__ import annotations

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from include.lakehouse.errors import LakehouseError
from include.lakehouse.maintenance.operations import read_table
from include.lakehouse.tables.registry import get_table
from lakehouse_airflow.operators.delta_maintenance import DeltaMaintenanceOperator


def test_success_and_failure_are_both_logged_and_a_retry_logs_once(lakehouse_root):
    for i in range(4):
        write_deltalake(get_table("silver/customers").uri, pa.table({"customer_id": [i]}), mode="append")
    write_deltalake(get_table("gold/dim_customer").uri, pa.table({"customer_sk": [1]}))  # no customer_id
    ok = DeltaMaintenanceOperator(task_id="maintain_table", table="silver/customers")
    report = ok.execute({"run_id": "run-1", "params": {"dry_run": False}})
    ok.execute({"run_id": "run-1", "params": {"dry_run": False}})  # a retry of the same run
    assert report["files_before"] == 4 and report["files_after"] == 1
    bad = DeltaMaintenanceOperator(task_id="maintain_table", table="gold/dim_customer")
    with pytest.raises(LakehouseError, match="z_order_by"):
        bad.execute({"run_id": "run-1", "params": {}})
    rows = {(r["table_name"], r["status"]) for r in read_table("ops/maintenance_log").to_pylist()}
    assert rows == {("silver/customers", "success"), ("gold/dim_customer", "failed")}
    assert read_table("ops/maintenance_log").num_rows == 2


def test_a_success_after_a_failed_try_is_logged_next_to_it(lakehouse_root, monkeypatch):
    from types import SimpleNamespace

    import include.lakehouse.maintenance.policy as maintenance_policy

    for i in range(3):
        write_deltalake(get_table("silver/customers").uri, pa.table({"customer_id": [i]}), mode="append")
    real = maintenance_policy.apply_policy

    def flaky(*args, **kwargs):
        monkeypatch.setattr(maintenance_policy, "apply_policy", real)
        raise LakehouseError("object store timed out")

    monkeypatch.setattr(maintenance_policy, "apply_policy", flaky)
    task = DeltaMaintenanceOperator(task_id="maintain_table", table="silver/customers")
    with pytest.raises(LakehouseError, match="timed out"):
        task.execute({"run_id": "run-1", "params": {}, "ti": SimpleNamespace(try_number=1)})
    task.execute({"run_id": "run-1", "params": {}, "ti": SimpleNamespace(try_number=2)})
    task.execute({"run_id": "run-1", "params": {}, "ti": SimpleNamespace(try_number=2)})  # same try again
    rows = sorted((r["try_number"], r["status"]) for r in read_table("ops/maintenance_log").to_pylist())
    assert rows == [(1, "failed"), (2, "success")]
