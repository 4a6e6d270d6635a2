"""Alert delivery for failures and missed deadlines, shared by every DAG.

An alert is a dict (dag, run, task, try, owner, logical date, deadline, UI link, severity,
dedup key) sent to the channels plugins/lakehouse_airflow/alerting.yaml routes for its DAG/owner:
the log and a JSON-lines outbox (always; LAKEHOUSE_ALERTS_FILE, default alerts/alerts.jsonl
next to a local LAKEHOUSE_ROOT), a PagerDuty Events v2 shaped webhook, Slack and email through
the providers' notifiers. A channel failing must never fail or hide what raised the alert,
and its error is logged with URLs cut to scheme://host/… (webhook URLs carry their token).

Which failures are still open (so a later success sends a recovery) is kept in the Airflow
metadata DB as Variables, which every component of a deployment shares (under `astro dev
start` each component is its own container); the outbox is a record, never read back.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, NoReturn

from airflow.sdk.bases.notifier import BaseNotifier

log = logging.getLogger(__name__)


def outbox_path() -> Path:
    if os.environ.get("LAKEHOUSE_ALERTS_FILE"):
        return Path(os.environ["LAKEHOUSE_ALERTS_FILE"])
    from include.lakehouse.config import local_dir

    return local_dir("alerts") / "alerts.jsonl"


def run_url(dag_id: str, run_id: str | None) -> str:
    base = os.environ.get("AIRFLOW__API__BASE_URL", "http://127.0.0.1:8080").rstrip("/")
    return f"{base}/dags/{dag_id}/runs/{run_id}" if run_id else f"{base}/dags/{dag_id}"


CONFIG_FILE = Path(__file__).with_name("alerting.yaml")
_broken_channels: set[str] = set()  # a broken channel logs its error once per process


@lru_cache(maxsize=1)
def _config() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(CONFIG_FILE.read_text()) or {}


def channels_for(dag_id: str | None, owner: str | None) -> list[str]:
    """Channels routed for a DAG / owner (DAG wins, then owner, then default); outbox always."""
    routes = _config().get("routes") or {}
    chosen = (routes.get("dags") or {}).get(dag_id) or (routes.get("owners") or {}).get(owner) \
        or routes.get("default") or []
    return ["outbox", *[c for c in chosen if c != "outbox"]]


def pagerduty_event(alert: dict[str, Any]) -> dict[str, Any]:
    """The alert as a PagerDuty Events API v2 event (trigger, or resolve for a recovery)."""
    details = {k: alert.get(k) for k in ("dag_id", "run_id", "task_id", "try_number", "owner", "logical_date",
                                         "deadline", "url", "kind") if alert.get(k) is not None}
    return {
        "routing_key": os.environ.get("LAKEHOUSE_PAGERDUTY_ROUTING_KEY", "lakehouse-local"),
        "event_action": "resolve" if alert.get("kind") == "recovery" else "trigger",
        "dedup_key": alert.get("dedup_key"),
        "payload": {"summary": str(alert.get("summary"))[:1024], "source": "airflow",
                    "severity": alert.get("severity", "critical"), "component": alert.get("dag_id"),
                    "group": alert.get("owner"), "class": alert.get("kind"), "custom_details": details},
        "links": [{"href": alert["url"], "text": "Airflow run"}] if alert.get("url") else [],
    }


def _configured_secrets() -> tuple[str | None, ...]:
    """What a channel error must never print: the webhook URL (its path and query carry the
    token) and the PagerDuty routing key."""
    url = os.environ.get("LAKEHOUSE_ALERT_WEBHOOK_URL") or ""
    path = url.split("://", 1)[-1].partition("/")[2]
    return url, ("/" + path if path else None), os.environ.get("LAKEHOUSE_PAGERDUTY_ROUTING_KEY")


def _send_webhook(alert: dict[str, Any]) -> bool:
    url = os.environ.get("LAKEHOUSE_ALERT_WEBHOOK_URL")
    if not url:
        return False
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(pagerduty_event(alert), default=str).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - URL from configuration
        response.read()
    return True


def _send_slack(alert: dict[str, Any]) -> bool:
    conn_id = os.environ.get("LAKEHOUSE_SLACK_CONN_ID")
    if not conn_id:
        return False
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    icon = {"info": ":white_check_mark:", "warning": ":warning:"}.get(alert.get("severity"), ":rotating_light:")
    notifier = SlackWebhookNotifier(slack_webhook_conn_id=conn_id,
                                    text=f"{icon} {alert['summary']} <{alert.get('url') or ''}|open run>")
    notifier.hook.extra_client_args["logger"] = _slack_client_log  # slack_sdk logs the webhook URL on retries
    notifier.notify({})
    return True


class _RedactUrls(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        from include.lakehouse.redaction import redact_urls

        record.msg, record.args = redact_urls(record.getMessage(), _configured_secrets()), ()
        return True


_slack_client_log = logging.getLogger(f"{__name__}.slack_client")
_slack_client_log.addFilter(_RedactUrls())


def _send_email(alert: dict[str, Any]) -> bool:
    to = os.environ.get("LAKEHOUSE_ALERT_EMAIL_TO")
    if not to:
        return False
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    body = "<br>".join(f"<b>{k}</b>: {v}" for k, v in alert.items())
    SmtpNotifier(to=to, smtp_conn_id=os.environ.get("LAKEHOUSE_SMTP_CONN_ID", "smtp_default"),
                 subject=f"[{alert.get('severity', 'critical')}] {alert['summary']}"[:200], html_content=body).notify({})
    return True


_SENDERS = {"webhook": _send_webhook, "slack": _send_slack, "email": _send_email}


def send_alert(alert: dict[str, Any]) -> dict[str, Any]:
    """Deliver one alert to its routed channels; returns it (with `sent_at`, `severity`,
    `channels`). Never raises: a failing channel is logged (once) and the others still go."""
    severity = alert.get("severity") or (_config().get("severity") or {}).get(alert.get("kind"), "critical")
    alert = {**alert, "severity": severity, "sent_at": datetime.now(timezone.utc).isoformat()}
    routed = channels_for(alert.get("dag_id"), alert.get("owner"))
    delivered = []
    for channel in routed[1:]:
        sender = _SENDERS.get(channel)
        try:
            if sender is not None and sender(alert):
                delivered.append(channel)
        except Exception as exc:  # a notifier must never mask the failure it reports
            if channel not in _broken_channels:
                from include.lakehouse.redaction import redact_urls

                _broken_channels.add(channel)
                log.error("alert channel %s failed (%s: %s); further errors of it are not logged", channel,
                          type(exc).__name__, redact_urls(str(exc), _configured_secrets()))
    alert["channels"] = ["outbox", *delivered]
    log.error("ALERT %s [%s]: %s", alert.get("kind"), severity, alert.get("summary"))
    try:
        path = outbox_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            fh.write(json.dumps(alert, default=str) + "\n")
    except OSError:
        log.exception("could not write the alert outbox")
    return alert


def task_fields(context) -> dict[str, Any]:
    """What every task alert carries about its task instance, from a callback context."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", "?")
    run_id = getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None)
    return {"dag_id": dag_id, "run_id": run_id, "task_id": getattr(ti, "task_id", None),
            "try_number": getattr(ti, "try_number", None), "owner": getattr(context.get("task"), "owner", None),
            "logical_date": str(context.get("logical_date")), "url": run_url(dag_id, run_id)}


def skip_and_alert(kind: str, reason: Exception) -> NoReturn:
    """Skip the running task with `reason` and tell its owner once (severity from alerting.yaml)."""
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowSkipException

    fields = task_fields(get_current_context())
    send_alert({"kind": kind, **fields, "summary": f"{fields['dag_id']} skipped: {reason}",
                "dedup_key": f"{fields['dag_id']}/{fields['run_id']}/{kind}"})
    raise AirflowSkipException(str(reason)) from reason


INCIDENT_PREFIX = "lakehouse_incident__"


def incident_key(dag_id: str, task_id: str) -> str:
    return f"{INCIDENT_PREFIX}{dag_id}__{task_id}"


def open_incident(dag_id: str, task_id: str, alert: dict[str, Any]) -> None:
    """Remember the failure alert of a task until it recovers (a Variable in the metadata DB)."""
    from airflow.sdk import Variable

    try:
        Variable.set(incident_key(dag_id, task_id), {k: alert.get(k) for k in ("dedup_key", "run_id", "sent_at")},
                     description="open alert incident: the task's last alert was a failure; "
                                 "its next success sends a recovery and removes this",
                     serialize_json=True)
    except Exception as exc:  # the failure alert itself went out; only its recovery is at stake
        log.error("could not record the open incident of %s.%s (%s: %s)", dag_id, task_id, type(exc).__name__, exc)


def close_incident(dag_id: str, task_id: str) -> dict[str, Any] | None:
    """The open incident of this task, removed; None when its last alert was not a failure."""
    from airflow.sdk import Variable

    key = incident_key(dag_id, task_id)
    try:
        incident = Variable.get(key, default=None, deserialize_json=True)
        if incident is not None:
            Variable.delete(key)
    except Exception as exc:
        log.error("could not read the open incident of %s.%s (%s: %s)", dag_id, task_id, type(exc).__name__, exc)
        return None
    return incident


class FailureNotifier(BaseNotifier):
    """on_failure_callback of every task (see defaults.py): one alert per failed try."""

    def __init__(self, kind: str = "task_failed"):
        super().__init__()
        self.kind = kind

    def notify(self, context) -> None:
        fields = task_fields(context)
        dag_id, run_id, task_id = fields["dag_id"], fields["run_id"], fields["task_id"]
        alert = send_alert({
            "kind": self.kind,
            "summary": f"{dag_id}.{task_id} failed (try {fields['try_number']}): {context.get('exception')!s:.300}",
            **fields,
            "dedup_key": f"{dag_id}/{run_id}/{task_id}",
        })
        open_incident(dag_id, task_id, alert)


class RecoveryNotifier(BaseNotifier):
    """on_success_callback of every task: when the task's last alert was a failure, say it
    recovered (PagerDuty `resolve` with the failure's dedup key). Open incidents live in the
    metadata DB (see open_incident), so any worker, in any container, sees them."""

    def notify(self, context) -> None:
        fields = task_fields(context)
        dag_id, run_id, task_id = fields["dag_id"], fields["run_id"], fields["task_id"]
        incident = close_incident(dag_id, task_id)
        if incident is None:
            return
        send_alert({"kind": "recovery", "severity": "info", **fields,
                    "summary": f"{dag_id}.{task_id} recovered in run {run_id} (failed in {incident.get('run_id')})",
                    "dedup_key": incident.get("dedup_key")})
