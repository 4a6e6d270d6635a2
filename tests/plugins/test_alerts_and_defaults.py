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


def test_deadlines_are_tiered_from_the_config_file():
    smoke = deadline_for("lakehouse_smoke")
    other = deadline_for("a_dag_not_listed")
    assert [d.interval for d in smoke] == [timedelta(minutes=15), timedelta(minutes=30)]
    assert [d.callback.kwargs["severity"] for d in smoke] == ["warning", "critical"]
    assert [d.interval for d in other] == [timedelta(minutes=60), timedelta(minutes=120)]
    assert smoke[0].callback.path == "lakehouse_airflow.callbacks.deadline_missed"
    assert smoke[1].callback.kwargs["dag_id"] == "lakehouse_smoke"


def test_alert_goes_to_the_webhook_as_a_pagerduty_event_and_a_broken_channel_hides_nothing(
        tmp_path, monkeypatch, caplog, webhook_receiver):
    url, received = webhook_receiver
    monkeypatch.setenv("LAKEHOUSE_ALERTS_FILE", str(tmp_path / "alerts.jsonl"))
    monkeypatch.setenv("LAKEHOUSE_ALERT_WEBHOOK_URL", url)
    monkeypatch.setenv("LAKEHOUSE_SLACK_CONN_ID", "no_such_slack_connection")  # configured but broken
    alerts._broken_channels.clear()
    for _ in range(2):
        sent = alerts.send_alert({"kind": "task_failed", "summary": "x failed", "dag_id": "ingest_files",
                                  "run_id": "r1", "task_id": "t", "try_number": 3, "owner": "data-platform",
                                  "url": "http://airflow/dags/ingest_files/runs/r1", "dedup_key": "ingest_files/r1/t"})
    assert sent["channels"] == ["outbox", "webhook"] and sent["severity"] == "critical"
    event = received[0]
    assert event["event_action"] == "trigger" and event["dedup_key"] == "ingest_files/r1/t"
    assert event["payload"]["severity"] == "critical" and event["payload"]["component"] == "ingest_files"
    assert event["payload"]["custom_details"]["try_number"] == 3
    assert event["links"] == [{"href": "http://airflow/dags/ingest_files/runs/r1", "text": "Airflow run"}]
    broken = [r for r in caplog.records if "alert channel slack failed" in r.getMessage()]
    assert len(broken) == 1  # logged once, though two alerts went out
    assert len((tmp_path / "alerts.jsonl").read_text().splitlines()) == 2


def test_routes_by_dag_then_owner():
    assert alerts.channels_for("alert_canary", "data-platform") == ["outbox", "webhook"]
    assert alerts.channels_for("ingest_files", "data-platform") == ["outbox", "webhook", "slack", "email"]
    assert alerts.channels_for("x", "someone_else") == ["outbox", "webhook", "slack"]


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
                                reference="DAGRUN_LOGICAL_DATE", severity="warning", context=context))
    alert = json.loads(outbox.read_text())
    assert alert["kind"] == "deadline_missed" and alert["deadline"] == "2024-01-01T06:00:00Z"
    assert alert["dedup_key"] == "ingest_files/scheduled__2024/deadline/warning" and alert["severity"] == "warning"


class VariableStore:
    """Stands in for the metadata DB's Variables (the task runner's API) in a unit test."""

    def __init__(self):
        self.values: dict[str, object] = {}

    def set(self, key, value, description=None, serialize_json=False):
        self.values[key] = json.loads(json.dumps(value))

    def get(self, key, default=None, deserialize_json=False):
        return self.values.get(key, default)

    def delete(self, key):
        self.values.pop(key, None)


def test_success_after_failure_sends_one_recovery_that_resolves_the_incident(tmp_path, monkeypatch):
    from airflow import sdk

    monkeypatch.setenv("LAKEHOUSE_ALERTS_FILE", str(tmp_path / "alerts.jsonl"))
    monkeypatch.delenv("LAKEHOUSE_ALERT_WEBHOOK_URL", raising=False)
    monkeypatch.setattr(sdk, "Variable", VariableStore())

    def ti(run_id, try_number=1):
        return SimpleNamespace(dag_id="ingest_files", run_id=run_id, task_id="load", try_number=try_number)

    task = SimpleNamespace(owner="data-platform")
    alerts.RecoveryNotifier().notify({"ti": ti("r0"), "task": task})  # never failed: nothing to say
    alerts.FailureNotifier().notify({"ti": ti("r1", 3), "task": task, "exception": ValueError("boom")})
    alerts.RecoveryNotifier().notify({"ti": ti("r2"), "task": task})
    alerts.RecoveryNotifier().notify({"ti": ti("r3"), "task": task})  # already recovered
    sent = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [a["kind"] for a in sent] == ["task_failed", "recovery"]
    assert sent[1]["dedup_key"] == sent[0]["dedup_key"] and alerts.pagerduty_event(sent[1])["event_action"] == "resolve"


def test_no_printed_text_carries_a_webhook_token(tmp_path, monkeypatch, caplog, capsys):
    """Channel errors, the Slack client's retry log and `make demo`'s summary show webhook URLs
    as scheme://host/… only: the token in their path never reaches a log or a terminal."""
    from scripts.local_airflow.summary import print_summary

    outbox = tmp_path / "alerts.jsonl"
    monkeypatch.setenv("LAKEHOUSE_ALERTS_FILE", str(outbox))
    monkeypatch.setenv("LAKEHOUSE_ALERT_WEBHOOK_URL", "hooks.example.com/services/T0/B0/HOOKTOKEN")  # no scheme
    monkeypatch.setenv("AIRFLOW_CONN_LEAKY_SLACK", json.dumps(
        {"conn_type": "slackwebhook", "password": "http://127.0.0.1:9/services/T0/B0/SLACKTOKEN"}))
    monkeypatch.setenv("LAKEHOUSE_SLACK_CONN_ID", "leaky_slack")  # refused: the client retries, then fails
    alerts._broken_channels.clear()
    sent = alerts.send_alert({"kind": "task_failed", "summary": "x failed", "dag_id": "ingest_files",
                              "owner": "data-platform"})
    assert sent["channels"] == ["outbox"]
    assert [r for r in caplog.records if "alert channel webhook failed" in r.getMessage()]
    assert [r for r in caplog.records if "alert channel slack failed" in r.getMessage()]
    monkeypatch.setenv("LAKEHOUSE_ALERT_WEBHOOK_URL", "https://hooks.example.com/services/T0/B0/HOOKTOKEN?k=1")
    print_summary([], 0, outbox)
    printed = capsys.readouterr()
    assert "webhook -> https://hooks.example.com/…" in printed.out
    everything = caplog.text + printed.out + printed.err + outbox.read_text()
    assert "HOOKTOKEN" not in everything and "SLACKTOKEN" not in everything


def test_recovery_needs_no_shared_outbox(tmp_path, monkeypatch):
    """Under `astro dev start` the task that failed and the one that recovers may run in
    different containers, each with its own disk: the open incident comes from the metadata DB."""
    from airflow import sdk

    monkeypatch.delenv("LAKEHOUSE_ALERT_WEBHOOK_URL", raising=False)
    monkeypatch.setattr(sdk, "Variable", VariableStore())
    task = SimpleNamespace(owner="data-platform")
    monkeypatch.setenv("LAKEHOUSE_ALERTS_FILE", str(tmp_path / "scheduler-a" / "alerts.jsonl"))
    alerts.FailureNotifier().notify({"ti": SimpleNamespace(dag_id="d", run_id="r1", task_id="t", try_number=3),
                                     "task": task, "exception": ValueError("boom")})
    monkeypatch.setenv("LAKEHOUSE_ALERTS_FILE", str(tmp_path / "scheduler-b" / "alerts.jsonl"))
    alerts.RecoveryNotifier().notify({"ti": SimpleNamespace(dag_id="d", run_id="r2", task_id="t", try_number=1),
                                      "task": task})
    recovered = [json.loads(line) for line in (tmp_path / "scheduler-b" / "alerts.jsonl").read_text().splitlines()]
    assert [a["kind"] for a in recovered] == ["recovery"] and recovered[0]["dedup_key"] == "d/r1/t"
