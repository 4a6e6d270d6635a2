"""Applying a table's maintenance policy (tables.yaml) and keeping the record of it.

`apply_policy` compacts to the target file size, z-orders when the table changed since
its last z-order, vacuums with the table's retention (the guard in maintenance.vacuum
applies) and checkpoints, and returns a before/after report. `log_maintenance` appends
reports (and restores) to `ops/maintenance_log`, the on-call record of what was done.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from include.lakehouse import maintenance as m
from include.lakehouse.config import get_table
from include.lakehouse.delta import append, try_open

LOG_TABLE = "ops/maintenance_log"
LOG_SCHEMA = pa.schema([
    ("logged_at", pa.timestamp("us", tz="UTC")), ("run_id", pa.string()), ("table_name", pa.string()),
    ("operation", pa.string()), ("status", pa.string()), ("dry_run", pa.bool_()),
    ("files_before", pa.int64()), ("files_after", pa.int64()), ("bytes_before", pa.int64()),
    ("bytes_after", pa.int64()), ("version_before", pa.int64()), ("version_after", pa.int64()),
    ("files_removed", pa.int64()), ("seconds", pa.float64()), ("detail", pa.string()),
    ("reason", pa.string()), ("requested_by", pa.string()),
])


def apply_policy(name: str, *, dry_run: bool = False, vacuum_override_reason: str | None = None,
                 retention_hours: int | None = None) -> dict[str, Any]:
    """Run compaction, z-order (if due), vacuum and checkpoint on one registered table."""
    spec = get_table(name)  # UnknownTableError names the table and the registry file
    started = time.perf_counter()
    if try_open(spec.uri) is None:
        return {"table_name": name, "operation": "maintenance", "status": "skipped",
                "detail": "table not created yet", "dry_run": dry_run, "seconds": 0.0}
    before = m.table_stats(spec)
    steps: list[str] = []
    if not dry_run:
        result = m.compact(spec)
        steps.append(f"compact -{result.files_removed}/+{result.files_added} files")
        if spec.maintenance.z_order_by:
            if m.changed_since_z_order(spec):
                result = m.z_order(spec)
                steps.append(f"z-order {','.join(spec.maintenance.z_order_by)} -{result.files_removed}/+{result.files_added}")
            else:
                steps.append("z-order skipped (no change since the last one)")
    vacuum = m.vacuum(spec, retention_hours=retention_hours, dry_run=dry_run, override_reason=vacuum_override_reason)
    if vacuum.details.get("refused"):
        steps.append(f"vacuum refused: {vacuum.details['pinned_files']} of {vacuum.details['would_remove']} file(s) "
                     f"still referenced by {', '.join(vacuum.details['pinned_by'])}")
    else:
        steps.append(f"vacuum {'would remove' if dry_run else 'removed'} {vacuum.details['would_remove']} "
                     f"file(s) older than {vacuum.details['retention_hours']} h")
    if spec.maintenance.checkpoint and not dry_run:
        m.checkpoint(spec)
        steps.append("checkpoint")
    after = m.table_stats(spec)
    return {
        "table_name": name, "operation": "maintenance", "status": "dry_run" if dry_run else "success",
        "dry_run": dry_run, "files_before": before["files"], "files_after": after["files"],
        "bytes_before": before["bytes"], "bytes_after": after["bytes"],
        "version_before": before["version"], "version_after": after["version"],
        "files_removed": vacuum.files_removed, "seconds": round(time.perf_counter() - started, 3),
        "detail": "; ".join(steps), "reason": vacuum_override_reason,
        "would_remove": vacuum.details["files"] if dry_run else [],
    }


def log_maintenance(rows: list[dict[str, Any]], *, run_id: str | None = None) -> int:
    """Append report rows to ops/maintenance_log, once per (run_id, table): a retry logs nothing twice."""
    now = datetime.now(timezone.utc)
    records = [{**{f.name: None for f in LOG_SCHEMA}, **{k: v for k, v in r.items() if k in LOG_SCHEMA.names},
                "logged_at": now, "run_id": run_id} for r in rows]
    table = pa.Table.from_pylist(records, schema=LOG_SCHEMA)
    tables = ",".join(sorted({str(r.get("table_name")) for r in rows}))
    result = append(LOG_TABLE, table, app_id=f"maintenance_log.{run_id}.{tables}" if run_id else None)
    return result.rows_inserted


def format_report(rows: list[dict[str, Any]]) -> list[str]:
    """Human-readable lines: one per table, for logs and the `make demo` output."""
    lines = []
    for r in rows:
        if r.get("status") in ("skipped", "failed"):
            lines.append(f"{r['table_name']}: {r['status']} ({r.get('detail')})")
            continue
        lines.append(
            f"{r['table_name']}: files {r['files_before']} -> {r['files_after']}, "
            f"bytes {r['bytes_before']:,} -> {r['bytes_after']:,}, v{r['version_before']} -> v{r['version_after']}, "
            f"{r['seconds']}s; {r['detail']}"
        )
    return lines


def restore_to(name: str, *, reason: str, version: int | None = None, timestamp: str | None = None,
               requested_by: str | None = None, dry_run: bool = False, run_id: str | None = None) -> dict[str, Any]:
    """Restore a registered table to a version or timestamp, and record who and why.

    Refuses without a reason, and refuses versions whose files were vacuumed (the error
    says so). `dry_run` checks the target and reports row counts without committing.
    """
    from include.lakehouse.errors import LakehouseError

    spec = get_table(name)
    if not (reason or "").strip():
        raise LakehouseError(f"restore of {name}: give a reason (it goes to {LOG_TABLE} for the next on-call)")
    if version is None and not timestamp:
        raise LakehouseError(f"restore of {name}: give a version or a timestamp")
    started = time.perf_counter()
    before = m.table_stats(spec)
    target = m.read_table(spec, version=version, timestamp=timestamp)  # raises if vacuumed / missing
    current_rows = m.read_table(spec, columns=[]).num_rows
    row = {"table_name": name, "operation": "restore", "reason": reason, "requested_by": requested_by,
           "dry_run": dry_run, "files_before": before["files"], "bytes_before": before["bytes"],
           "version_before": before["version"]}
    target_label = f"version {version}" if version is not None else f"timestamp {timestamp}"
    if dry_run:
        row.update(status="dry_run", version_after=before["version"], files_after=before["files"],
                   bytes_after=before["bytes"],
                   detail=f"{target_label} is restorable: {target.num_rows} rows there, {current_rows} now")
    else:
        result = m.restore(spec, version=version, timestamp=timestamp)
        after = m.table_stats(spec)
        row.update(status="success", version_after=after["version"], files_after=after["files"],
                   bytes_after=after["bytes"],
                   detail=f"restored to version {result.details['restored_to_version']}: "
                          f"{current_rows} -> {target.num_rows} rows")
    row["seconds"] = round(time.perf_counter() - started, 3)
    log_maintenance([row], run_id=run_id)
    return row
