"""Alert delivery for failures and missed deadlines, shared by every DAG.

An alert is a dict (dag, run, task, try, owner, logical date, deadline, UI link, dedup
key) sent to every configured channel: the log and a JSON-lines outbox (always; the outbox
is what on-call tooling and tests read, LAKEHOUSE_ALERTS_FILE, default
.local/alerts/alerts.jsonl) and a Slack webhook when LAKEHOUSE_SLACK_CONN_ID names a
connection. A channel failing must never fail the task that raised the alert.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow.sdk.bases.notifier import BaseNotifier

log = logging.getLogger(__name__)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def outbox_path() -> Path:
    return Path(os.environ.get("LAKEHOUSE_ALERTS_FILE") or PROJECT_ROOT / ".local" / "alerts" / "alerts.jsonl")


def run_url(dag_id: str, run_id: str | None) -> str:
    base = os.environ.get("AIRFLOW__API__BASE_URL", "http://127.0.0.1:8080").rstrip("/")
    return f"{base}/dags/{dag_id}/runs/{run_id}" if run_id else f"{base}/dags/{dag_id}"


def send_alert(alert: dict[str, Any]) -> dict[str, Any]:
    """Deliver one alert to every channel; returns it (with `sent_at`)."""
    alert = {**alert, "sent_at": datetime.now(timezone.utc).isoformat()}
    log.error("ALERT %s: %s", alert.get("kind"), alert.get("summary"))
    try:
        path = outbox_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            fh.write(json.dumps(alert, default=str) + "\n")
    except OSError:
        log.exception("could not write the alert outbox")
    conn_id = os.environ.get("LAKEHOUSE_SLACK_CONN_ID")
    if conn_id:
        try:
            from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

            SlackWebhookHook(slack_webhook_conn_id=conn_id).send(
                text=f":rotating_light: {alert['summary']} <{alert['url']}|open run>"
            )
        except Exception:
            log.exception("Slack alert via %s failed", conn_id)
    return alert


class FailureNotifier(BaseNotifier):
    """on_failure_callback of every task (see defaults.py): one alert per failed try."""

    def __init__(self, kind: str = "task_failed"):
        super().__init__()
        self.kind = kind

    def notify(self, context) -> None:
        ti = context.get("ti") or context.get("task_instance")
        dag_run = context.get("dag_run")
        dag_id = getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", "?")
        run_id = getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None)
        task_id = getattr(ti, "task_id", None)
        try_number = getattr(ti, "try_number", None)
        task = context.get("task")
        exception = context.get("exception")
        send_alert({
            "kind": self.kind,
            "summary": f"{dag_id}.{task_id} failed (try {try_number}): {exception!s:.300}",
            "dag_id": dag_id, "run_id": run_id, "task_id": task_id, "try_number": try_number,
            "owner": getattr(task, "owner", None),
            "logical_date": str(context.get("logical_date")),
            "url": run_url(dag_id, run_id),
            "dedup_key": f"{dag_id}/{run_id}/{task_id}",
        })
