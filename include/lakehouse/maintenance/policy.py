"""Applying a table's maintenance policy (tables.yaml) and keeping the record of it.

`apply_policy` compacts to the target file size, z-orders when the table changed since
its last z-order, vacuums with the table's retention (the guard in operations.vacuum
applies) and checkpoints, and returns a before/after report (data: the Airflow side formats
it). `log_maintenance` appends reports (and restores) to `ops/maintenance_log`, the on-call
record of what was done. Never picks tables itself (callers pass registered names) and never
formats text for people.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

import include.lakehouse.maintenance.operations as m
from include.lakehouse.tables.delta import append, exists, try_open
from include.lakehouse.tables.registry import get_table, registered_tables

LOG_TABLE = "ops/maintenance_log"
LOG_SCHEMA = pa.schema([
    ("logged_at", pa.timestamp("us", tz="UTC")), ("run_id", pa.string()), ("table_name", pa.string()),
    ("operation", pa.string()), ("status", pa.string()), ("dry_run", pa.bool_()),
    ("files_before", pa.int64()), ("files_after", pa.int64()), ("bytes_before", pa.int64()),
    ("bytes_after", pa.int64()), ("version_before", pa.int64()), ("version_after", pa.int64()),
    ("files_removed", pa.int64()), ("seconds", pa.float64()), ("detail", pa.string()),
    ("reason", pa.string()), ("requested_by", pa.string()), ("try_number", pa.int64()),
])


def tables_to_maintain() -> list[str]:
    """The registered tables that exist (delta_maintenance maps one task over each): a table not
    created yet has nothing to maintain and nothing to log, and its task would only say so."""
    return [name for name in registered_tables() if exists(name)]


def apply_policy(name: str, *, dry_run: bool = False, vacuum_override_reason: str | None = None,
                 retention_hours: int | None = None) -> dict[str, Any]:
    """Run compaction, z-order (if due), vacuum and checkpoint on one registered table.

    The table is opened once and each step brings that snapshot up to date (a step that must
    re-plan after a commit conflict opens it afresh): opening it again for every step was most
    of a small table's maintenance."""
    spec = get_table(name)  # UnknownTableError names the table and the registry file
    started = time.perf_counter()
    dt = try_open(spec.uri)
    if dt is None:
        return {"table_name": name, "operation": "maintenance", "status": "skipped",
                "detail": "table not created yet", "dry_run": dry_run, "seconds": 0.0}
    before = m.table_stats(spec, dt=dt)
    steps: list[str] = []
    if not dry_run:
        result = m.compact(spec, dt=dt)
        steps.append(f"compact -{result.files_removed}/+{result.files_added} files")
        if spec.maintenance.z_order_by:
            if m.changed_since_z_order(spec, dt=dt):
                result = m.z_order(spec, dt=dt)
                steps.append(f"z-order {','.join(spec.maintenance.z_order_by)} -{result.files_removed}/+{result.files_added}")
            else:
                steps.append("z-order skipped (no change since the last one)")
    vacuum = m.vacuum(spec, retention_hours=retention_hours, dry_run=dry_run, override_reason=vacuum_override_reason,
                      dt=dt)
    if vacuum.details.get("refused"):
        steps.append(f"vacuum refused: {vacuum.details['pinned_files']} of {vacuum.details['would_remove']} file(s) "
                     f"still referenced by {', '.join(vacuum.details['pinned_by'])}")
    else:
        steps.append(f"vacuum {'would remove' if dry_run else 'removed'} {vacuum.details['would_remove']} "
                     f"file(s) older than {vacuum.details['retention_hours']} h")
    if spec.maintenance.checkpoint and not dry_run:
        m.checkpoint(spec, dt=dt)
        steps.append("checkpoint")
    after = m.table_stats(spec, dt=dt)
    return {
        "table_name": name, "operation": "maintenance", "status": "dry_run" if dry_run else "success",
        "dry_run": dry_run, "files_before": before["files"], "files_after": after["files"],
        "bytes_before": before["bytes"], "bytes_after": after["bytes"],
        "version_before": before["version"], "version_after": after["version"],
        "files_removed": vacuum.files_removed, "seconds": round(time.perf_counter() - started, 3),
        "detail": "; ".join(steps), "reason": vacuum_override_reason,
        "would_remove": vacuum.details["files"] if dry_run else [],
    }


def log_maintenance(rows: list[dict[str, Any]], *, run_id: str | None = None, try_number: int | None = None) -> int:
    """Append report rows to ops/maintenance_log, once per (run_id, try, table): the same try
    logs nothing twice, and a retry that succeeds after a failed try is logged next to it."""
    now = datetime.now(timezone.utc)
    records = [{**{f.name: None for f in LOG_SCHEMA}, **{k: v for k, v in r.items() if k in LOG_SCHEMA.names},
                "logged_at": now, "run_id": run_id, "try_number": try_number} for r in rows]
    table = pa.Table.from_pylist(records, schema=LOG_SCHEMA)
    tables = ",".join(sorted({str(r.get("table_name")) for r in rows}))
    attempt = f".try{try_number}" if try_number is not None else ""
    result = append(LOG_TABLE, table, app_id=f"maintenance_log.{run_id}{attempt}.{tables}" if run_id else None)
    return result.rows_inserted
