"""The one place for what every DAG shares: owner, tags, retries with exponential backoff,
timeouts, the failure notifier, the deadline from plugins/lakehouse_airflow/deadlines.yaml and
the run-health record of every finished run.

Usage in a DAG file:  `@dag(**dag_args("my_dag", doc_md=__doc__, schedule="@daily"))`.
Cheap at parse time: reads one small YAML file once per process, opens nothing else.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

from lakehouse_airflow.alerts import FailureNotifier, RecoveryNotifier
from lakehouse_airflow.run_health import dag_failed, dag_succeeded

DEADLINES_FILE = Path(__file__).with_name("deadlines.yaml")
OWNER = "data-platform"
START_DATE = datetime(2024, 1, 1)


def default_args(owner: str = OWNER, **overrides: Any) -> dict[str, Any]:
    return {
        "owner": owner,
        "retries": 2,
        "retry_delay": timedelta(seconds=10),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        "execution_timeout": timedelta(minutes=30),
        "on_failure_callback": FailureNotifier(),
        "on_success_callback": RecoveryNotifier(),
        **overrides,
    }


@lru_cache(maxsize=1)
def _deadline_config() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(DEADLINES_FILE.read_text()) or {}


def deadline_for(dag_id: str, owner: str = OWNER) -> list[DeadlineAlert]:
    """The DAG's tiered DeadlineAlerts; each callback runs in the triggerer and alerts with its tier's severity."""
    config = _deadline_config()
    spec = {**config.get("default", {}), **(config.get("dags") or {}).get(dag_id, {})}
    reference = spec.get("reference", "DAGRUN_QUEUED_AT")
    tiers = spec.get("tiers") or [{"minutes": spec.get("minutes", 120), "severity": "critical"}]
    return [
        DeadlineAlert(
            reference=getattr(DeadlineReference, reference),
            interval=timedelta(minutes=float(tier["minutes"])),
            callback=AsyncCallback(
                "lakehouse_airflow.callbacks.deadline_missed",
                kwargs={"dag_id": dag_id, "owner": owner, "minutes": tier["minutes"], "reference": reference,
                        "severity": tier.get("severity", "critical")},
            ),
        )
        for tier in tiers
    ]


def run_day(dag_run) -> str:
    """The date a run is for: its logical date, or when it was asked to run (manual runs in
    Airflow 3 may have no logical date)."""
    when = getattr(dag_run, "logical_date", None) or dag_run.run_after
    return when.date().isoformat()


def dag_args(dag_id: str, *, doc_md: str, schedule: Any = None, tags: list[str] | None = None,
             owner: str = OWNER, **kwargs: Any) -> dict[str, Any]:
    """Keyword arguments for `@dag`/`DAG` with the project's defaults filled in."""
    return {
        "dag_id": dag_id,
        "doc_md": doc_md,
        "schedule": schedule,
        "start_date": START_DATE,
        "catchup": False,
        "max_active_runs": 1,
        "tags": ["lakehouse", *(tags or [])],
        "default_args": default_args(owner),
        "deadline": deadline_for(dag_id, owner),
        "on_success_callback": dag_succeeded,  # run health: ops/dag_runs (Lakehouse health page)
        "on_failure_callback": dag_failed,
        **kwargs,
    }
