"""On-call's restore of one registered table, and what it leaves downstream.

`restore_to` rolls a table back to a version or timestamp with its positions (the next
ingest/CDC run reads again what came after), logs who and why to `ops/maintenance_log`, and
names the downstream tables that consumed beyond the target with the version to restore them
to. Never touches a table other than the one asked for, never restores without a reason.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import include.lakehouse.maintenance.operations as m
from include.lakehouse.maintenance.policy import LOG_TABLE, log_maintenance
from include.lakehouse.tables.delta import open_table, position, try_open
from include.lakehouse.tables.registry import get_table


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
    own positions roll back with it (maintenance.operations.restore), so the next ingest/CDC run brings
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
