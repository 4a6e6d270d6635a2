"""Run health per DAG: every finished run (state, duration, the last task's try) and every
missed deadline, recorded by the DAGs' callbacks (plugins/lakehouse_airflow/run_health.py), and
summarised per DAG over the trailing week into ops/dag_health by observe_lakehouse.

A run is recorded by a DAG callback, which Airflow runs in a short-lived process of the
dag-processor, one per finished run: recording imports only pyarrow and the table layer (not the
health module, a quarter second more in each of those processes)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pyarrow as pa

from include.lakehouse.tables.delta import append

RUNS = "ops/dag_runs"
DEADLINE_MISSES = "ops/deadline_misses"

RUN_SCHEMA = pa.schema([
    ("dag_id", pa.string()), ("run_id", pa.string()), ("run_type", pa.string()), ("state", pa.string()),
    ("started_at", pa.timestamp("us", tz="UTC")), ("ended_at", pa.timestamp("us", tz="UTC")),
    ("duration_s", pa.float64()), ("last_task", pa.string()), ("last_try", pa.int64()), ("reason", pa.string()),
])
MISS_SCHEMA = pa.schema([("dag_id", pa.string()), ("run_id", pa.string()), ("severity", pa.string()),
                         ("deadline", pa.string()), ("recorded_at", pa.timestamp("us", tz="UTC"))])
HEALTH_SCHEMA = pa.schema([
    ("observed_at", pa.timestamp("us", tz="UTC")), ("dag_id", pa.string()), ("runs", pa.int64()),
    ("failed", pa.int64()), ("retried", pa.int64()), ("deadline_misses", pa.int64()),
    ("mean_duration_s", pa.float64()), ("max_duration_s", pa.float64()), ("last_state", pa.string()),
])


def record_run(row: dict[str, Any]) -> None:
    append(RUNS, pa.Table.from_pylist([row], schema=RUN_SCHEMA))


def record_deadline_miss(row: dict[str, Any]) -> None:
    append(DEADLINE_MISSES, pa.Table.from_pylist([{**row, "recorded_at": datetime.now(timezone.utc)}],
                                                 schema=MISS_SCHEMA))


def summarise(now: datetime | None = None, days: int = 7) -> list[dict[str, Any]]:
    """Per DAG over the trailing `days`: runs, failed, retried (last task needed more than one
    try), deadline misses, mean and max duration, the latest run's state; into ops/dag_health."""
    from include.lakehouse.observability.health import DAG_HEALTH, read_ops

    now = now or datetime.now(timezone.utc)
    since = now - timedelta(days=days)
    runs = [r for r in read_ops(RUNS) if r["ended_at"] and r["ended_at"] >= since]
    misses = [m for m in read_ops(DEADLINE_MISSES) if m["recorded_at"] >= since]
    rows = []
    for dag_id in sorted({r["dag_id"] for r in runs} | {m["dag_id"] for m in misses}):
        mine = sorted((r for r in runs if r["dag_id"] == dag_id), key=lambda r: r["ended_at"])
        durations = [r["duration_s"] for r in mine if r["duration_s"] is not None]
        rows.append({
            "observed_at": now, "dag_id": dag_id, "runs": len(mine),
            "failed": sum(r["state"] == "failed" for r in mine),
            "retried": sum((r["last_try"] or 1) > 1 for r in mine),
            "deadline_misses": len({(m["run_id"], m["severity"]) for m in misses if m["dag_id"] == dag_id}),
            "mean_duration_s": round(sum(durations) / len(durations), 1) if durations else None,
            "max_duration_s": max(durations) if durations else None,
            "last_state": mine[-1]["state"] if mine else None,
        })
    if rows:
        append(DAG_HEALTH, pa.Table.from_pylist(rows, schema=HEALTH_SCHEMA))
    return rows
