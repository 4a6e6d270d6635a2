"""DAG-level callbacks that record each finished run (state, duration, last task's try) into
ops/dag_runs for the Lakehouse health page (include/lakehouse/observability/runs.py). Recording
never fails or delays what it records: errors are logged and swallowed."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

log = logging.getLogger(__name__)


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def run_row(context: dict[str, Any], state: str) -> dict[str, Any]:
    dag_run = context.get("dag_run")
    ti = context.get("ti") or context.get("task_instance")
    started = _get(dag_run, "start_date")
    ended = _get(dag_run, "end_date") or datetime.now(timezone.utc)
    dag = context.get("dag")
    return {
        "dag_id": _get(dag_run, "dag_id") or getattr(dag, "dag_id", None),
        "run_id": context.get("run_id") or _get(dag_run, "run_id"),
        "run_type": str(_get(dag_run, "run_type") or ""), "state": state,
        "started_at": started, "ended_at": ended,
        "duration_s": round((ended - started).total_seconds(), 3) if started else None,
        "last_task": getattr(ti, "task_id", None), "last_try": getattr(ti, "try_number", None),
        "reason": str(context.get("reason") or "")[:500],
    }


def _record(context: dict[str, Any], state: str) -> None:
    try:
        from include.lakehouse.observability.runs import record_run

        record_run(run_row(context, state))
    except Exception:  # run health is a record, never a reason for a callback to fail
        log.exception("could not record the run in ops/dag_runs")


def dag_succeeded(context: dict[str, Any]) -> None:
    _record(context, "success")


def dag_failed(context: dict[str, Any]) -> None:
    _record(context, "failed")
