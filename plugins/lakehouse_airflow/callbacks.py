"""Deadline (SLA) callbacks. The triggerer imports them by dotted path, so they live here,
importable by every Airflow component, and never in a DAG file.
"""

from __future__ import annotations

from typing import Any

from lakehouse_airflow.alerts import run_url, send_alert


async def deadline_missed(*, dag_id: str, owner: str, minutes: float, reference: str, severity: str = "critical",
                          context: dict[str, Any] | None = None, **_: Any) -> None:
    """Warn or page (by tier `severity`): a run of `dag_id` was not finished within its deadline."""
    dag_run = (context or {}).get("dag_run") or {}
    deadline = (context or {}).get("deadline") or {}
    run_id = dag_run.get("dag_run_id") or dag_run.get("run_id")
    send_alert({
        "kind": "deadline_missed",
        "summary": f"{dag_id} run {run_id} missed its {severity} deadline ({minutes} min after {reference})",
        "severity": severity,
        "dag_id": dag_id, "run_id": run_id, "task_id": None, "try_number": None, "owner": owner,
        "logical_date": dag_run.get("logical_date"), "deadline": str(deadline.get("deadline_time")),
        "url": run_url(dag_id, run_id), "dedup_key": f"{dag_id}/{run_id}/deadline/{severity}",
    })
    await _record_miss({"dag_id": dag_id, "run_id": run_id, "severity": severity,
                        "deadline": str(deadline.get("deadline_time"))})


async def _record_miss(row: dict[str, Any]) -> None:
    """ops/deadline_misses for the health page, off the triggerer's event loop; never raises."""
    import asyncio
    import logging

    try:
        from include.lakehouse.observability.runs import record_deadline_miss

        await asyncio.to_thread(record_deadline_miss, row)
    except Exception:
        logging.getLogger(__name__).exception("could not record the deadline miss in ops/deadline_misses")
