"""Applying a table's maintenance policy (tables.yaml) and keeping the record of it.

`apply_policy` compacts to the target file size, z-orders when the table changed since
its last z-order, vacuums with the table's retention (the guard in maintenance.vacuum
applies) and checkpoints, and returns a before/after report. `log_maintenance` appends
reports (and restores) to `ops/maintenance_log`, the on-call record of what was done.
`restore_to` is on-call's restore: the table's positions roll back with its data, and the
report names the downstream tables that consumed beyond the target (restore never touches them).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from include.lakehouse import maintenance as m
from include.lakehouse.config import get_table
from include.lakehouse.delta import append, open_table, position, try_open

LOG_TABLE = "ops/maintenance_log"
LOG_SCHEMA = pa.schema([
    ("logged_at", pa.timestamp("us", tz="UTC")), ("run_id", pa.string()), ("table_name", pa.string()),
    ("operation", pa.string()), ("status", pa.string()), ("dry_run", pa.bool_()),
    ("files_before", pa.int64()), ("files_after", pa.int64()), ("bytes_before", pa.int64()),
    ("bytes_after", pa.int64()), ("version_before", pa.int64()), ("version_after", pa.int64()),
    ("files_removed", pa.int64()), ("seconds", pa.float64()), ("detail", pa.string()),
    ("reason", pa.string()), ("requested_by", pa.string()), ("try_number", pa.int64()),
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


def _consumers(name: str) -> list[tuple[str, str]]:
    """(table, app id) of the tables that record how far they consumed `name`'s change feed
    (sources.yaml: CDC tables read bronze/<topic>, dimensions read silver/<table>)."""
    from include.lakehouse.config import load_sources

    sources = load_sources()
    cdc = sources.get("cdc") or {}
    found = [(f"silver/{t}", f"cdc_apply.{name}") for t, spec in cdc.items() if name == f"bronze/{spec['topic']}"]
    found += [(f"gold/{d}", f"scd2.{name}") for d, spec in (sources.get("dimensions") or {}).items()
              if name == f"silver/{spec['source']}"]
    return found


def downstream_ahead(name: str, restored_to: int) -> list[dict[str, Any]]:
    """Tables that consumed `name` beyond `restored_to`: they still hold the changes the restore
    undid (a restore never rewrites another table). Each comes with the newest of its own
    versions that had consumed no further (`restore_to_version`, None when none is left)."""
    ahead = []
    for table, app_id in _consumers(name):
        dt = try_open(get_table(table).uri)
        consumed = position(dt, app_id)
        if consumed is None or consumed <= restored_to:
            continue
        candidate = None
        for version in range(dt.version() - 1, -1, -1):
            try:
                earlier = position(open_table(table, version=version), app_id)
            except Exception:  # noqa: BLE001 - log cleaned up or vacuumed: no older candidate
                break
            if earlier is None or earlier <= restored_to:
                candidate = version
                break
        ahead.append({"table": table, "position": app_id, "consumed_up_to": consumed,
                      "restore_to_version": candidate})
    return ahead


def _list_versions(name: str, *, reason: str, requested_by: str | None, run_id: str | None,
                   try_number: int | None, limit: int = 10) -> dict[str, Any]:
    """A dry run without a target: the versions on-call can choose from, newest first."""
    stats = m.table_stats(name)
    commits = [f"v{c['version']} {datetime.fromtimestamp(c['timestamp'] / 1000, timezone.utc):%Y-%m-%dT%H:%M:%SZ} "
               f"{c.get('operation')}" for c in m.history(name, limit)]
    row = {"table_name": name, "operation": "restore", "status": "dry_run", "dry_run": True, "reason": reason,
           "requested_by": requested_by, "files_before": stats["files"], "files_after": stats["files"],
           "bytes_before": stats["bytes"], "bytes_after": stats["bytes"], "version_before": stats["version"],
           "version_after": stats["version"], "seconds": 0.0,
           "detail": "no version or timestamp given; newest versions: " + "; ".join(commits)}
    log_maintenance([row], run_id=run_id, try_number=try_number)
    return {**row, "positions_reset": {}, "downstream": []}


def restore_to(name: str, *, reason: str, version: int | None = None, timestamp: str | None = None,
               requested_by: str | None = None, dry_run: bool = False, run_id: str | None = None,
               try_number: int | None = None) -> dict[str, Any]:
    """Restore a registered table to a version or timestamp, and record who and why.

    Refuses without a reason, with both a version and a timestamp, with a target that does not
    exist (vacuumed, before the table, in the future) and with the current version. The table's
    own positions roll back with it (maintenance.restore), so the next ingest/CDC run brings
    back what came after. Tables downstream that consumed beyond the target are listed in the
    report (`downstream`) with the version to restore them to: on-call restores them too.
    `dry_run` checks the target and reports row counts and positions without committing.
    """
    from include.lakehouse.errors import LakehouseError

    spec = get_table(name)
    if not (reason or "").strip():
        raise LakehouseError(f"restore of {name}: give a reason (it goes to {LOG_TABLE} for the next on-call)")
    if version is None and not timestamp:
        if not dry_run:
            raise LakehouseError(f"restore of {name}: give a version or a timestamp")
        return _list_versions(name, reason=reason, requested_by=requested_by, run_id=run_id, try_number=try_number)
    if version is not None and timestamp:
        raise LakehouseError(f"restore of {name}: give a version or a timestamp, not both "
                             f"(got version {version} and timestamp {timestamp})")
    started = time.perf_counter()
    before = m.table_stats(spec)
    target = m.read_table(spec, version=version, timestamp=timestamp)  # raises if vacuumed / missing
    target_version = m.target_version(spec, version=version, timestamp=timestamp)
    if target_version == before["version"]:
        raise LakehouseError(f"restore of {name}: already at version {target_version}; nothing to restore")
    current_rows = m.read_table(spec, columns=[]).num_rows
    downstream = downstream_ahead(name, target_version)  # before committing: a failure here changes nothing
    row = {"table_name": name, "operation": "restore", "reason": reason, "requested_by": requested_by,
           "dry_run": dry_run, "files_before": before["files"], "bytes_before": before["bytes"],
           "version_before": before["version"]}
    if dry_run:
        moved = m.positions_at(open_table(spec), target_version)
        row.update(status="dry_run", version_after=before["version"], files_after=before["files"],
                   bytes_after=before["bytes"],
                   detail=f"version {target_version} is restorable: {target.num_rows} rows there, {current_rows} now; "
                          f"{len(moved)} position(s) would roll back")
    else:
        result = m.restore(spec, version=target_version)
        moved = result.details["positions_reset"]
        after = m.table_stats(spec)
        row.update(status="success", version_after=after["version"], files_after=after["files"],
                   bytes_after=after["bytes"],
                   detail=f"restored to version {target_version}: {current_rows} -> {target.num_rows} rows; "
                          f"{len(moved)} position(s) rolled back, the next run reads again what came after")
    if downstream:
        row["detail"] += "; downstream still holds the undone changes, restore it too: " + ", ".join(
            f"{d['table']} (consumed up to v{d['consumed_up_to']}) to version {d['restore_to_version']}"
            for d in downstream)
    row["seconds"] = round(time.perf_counter() - started, 3)
    log_maintenance([row], run_id=run_id, try_number=try_number)
    return {**row, "positions_reset": {k: list(v) for k, v in moved.items()}, "downstream": downstream}
