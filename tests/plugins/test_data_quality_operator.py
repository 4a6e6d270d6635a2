"""DataQualityOperator as a task: a failing `fail` suite fails the task at once (no retries),
a `quarantine` suite succeeds with the rows set aside and alerts once, results are returned."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pyarrow as pa
import pytest
from airflow.sdk.exceptions import AirflowFailException
from deltalake import write_deltalake

from lakehouse_airflow.operators.data_quality import DataQualityOperator
from tests.quality.test_expectations import orders


def context():
    return {"ti": SimpleNamespace(dag_id="cdc_apply", run_id="r1", task_id="validate")}


def test_failing_suite_fails_the_task_without_retry(lakehouse_root):
    write_deltalake(str(lakehouse_root / "silver" / "customers"), pa.table({
        "customer_id": pa.array([1, 1], pa.int64()), "email": ["a@x.org", "b@x.org"], "segment": ["vip", "consumer"]}))
    with pytest.raises(AirflowFailException, match="expect_column_values_to_be_unique"):
        DataQualityOperator(task_id="validate_silver_customers", suite="silver_customers").execute(context())


def test_quarantine_suite_succeeds_sets_rows_aside_and_alerts(lakehouse_root, tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_ALERTS_FILE", str(tmp_path / "alerts.jsonl"))
    write_deltalake(str(lakehouse_root / "silver" / "customers"), pa.table({
        "customer_id": pa.array([1], pa.int64()), "email": ["a@x.org"], "segment": ["consumer"]}))
    write_deltalake(str(lakehouse_root / "silver" / "orders"), orders([5, -1, 7]))
    result = DataQualityOperator(task_id="validate_silver_orders", suite="silver_orders").execute(context())
    assert result["action"] == "quarantined" and result["counts"]["rows quarantined by GX"] == 1
    assert result["docs"].endswith("index.html")
    alert = json.loads((tmp_path / "alerts.jsonl").read_text())
    assert alert["kind"] == "data_quality" and alert["dedup_key"] == "dq/silver_orders/silver/orders/v0"
