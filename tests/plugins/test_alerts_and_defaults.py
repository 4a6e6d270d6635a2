"""Shared DAG defaults, failure alerts and the deadline callback produce what on-call needs."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from types import SimpleNamespace

from lakehouse_airflow import alerts
from lakehouse_airflow.callbacks import deadline_missed
from lakehouse_airflow.defaults import dag_args, deadline_for, default_args


def test_defaults_give_retries_backoff_timeout_and_failure_notifier():
    args = default_args()
    assert args["retries"] >= 2 and args["retry_exponential_backoff"] is True
    assert args["execution_timeout"] <= timedelta(hours=1)
    assert isinstance(args["on_failure_callback"], alerts.FailureNotifier)
    kwargs = dag_args("some_dag", doc_md="doc", tags=["x"])
    assert kwargs["tags"] == ["lakehouse", "x"] and kwargs["catchup"] is False


def test_deadline_comes_from_the_config_file():
    smoke = deadline_for("lakehouse_smoke")
    other = deadline_for("a_dag_not_listed")
    assert smoke.interval == timedelta(minutes=30)
    assert other.interval == timedelta(minutes=120)
    assert smoke.callback.path == "lakehouse_airflow.callbacks.deadline_missed"
    assert smoke.callback.kwargs["dag_id"] == "lakehouse_smoke"


def test_failure_notifier_writes_a_complete_alert(tmp_path, monkeypatch):
    outbox = tmp_path / "alerts.jsonl"
    monkeypatch.setenv("LAKEHOUSE_ALERTS_FILE", str(outbox))
    ti = SimpleNamespace(dag_id="ingest_files", run_id="manual__1", task_id="load_orders", try_number=3)
    alerts.FailureNotifier().notify({
        "ti": ti, "task": SimpleNamespace(owner="data-platform"), "exception": ValueError("bad header"),
        "logical_date": "2024-01-01T00:00:00+00:00",
    })
    alert = json.loads(outbox.read_text().splitlines()[-1])
    assert alert["kind"] == "task_failed" and alert["owner"] == "data-platform"
    assert alert["dedup_key"] == "ingest_files/manual__1/load_orders" and alert["try_number"] == 3
    assert alert["url"].endswith("/dags/ingest_files/runs/manual__1") and "bad header" in alert["summary"]


def test_deadline_callback_sends_a_deadline_alert(tmp_path, monkeypatch):
    outbox = tmp_path / "alerts.jsonl"
    monkeypatch.setenv("LAKEHOUSE_ALERTS_FILE", str(outbox))
    context = {"dag_run": {"dag_run_id": "scheduled__2024", "logical_date": "2024-01-01T00:00:00Z"},
               "deadline": {"deadline_time": "2024-01-01T06:00:00Z"}}
    asyncio.run(deadline_missed(dag_id="ingest_files", owner="data-platform", minutes=360,
                                reference="DAGRUN_LOGICAL_DATE", context=context))
    alert = json.loads(outbox.read_text())
    assert alert["kind"] == "deadline_missed" and alert["deadline"] == "2024-01-01T06:00:00Z"
    assert alert["dedup_key"] == "ingest_files/scheduled__2024/deadline"
