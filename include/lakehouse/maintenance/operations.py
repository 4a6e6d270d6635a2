"""Delta table upkeep and time travel: compaction, z-order, vacuum (guarded), checkpoints,
history, reads at a version or time, restore, and change data feed reads.

A restore rolls back the positions the table records (Delta app transactions) together with
its data, so what the restore removed is read again by the next ingest or CDC run; a consumer
of the change feed reads past restores (read_changes_since), never through them.

The vacuum guard is the point of this module: a retention shorter than the guard
(default 168 h, LAKEHOUSE_VACUUM_MIN_RETENTION_HOURS) destroys time travel and can break
concurrent readers, so it is refused unless the caller gives a reason, which is logged.
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import datetime, timezone
from typing import Any, Iterable

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable

from include.lakehouse.config import storage_options
from include.lakehouse.tables.delta import (FORGOTTEN, add_actions, commit_properties, open_table, position,
                                           with_commit_retries)
from include.lakehouse.tables.registry import TableSpec, resolve
from include.lakehouse.errors import (LakehouseError, RestoredUpstreamError, RetentionGuardError,
                                     VersionNotAvailableError)
from include.lakehouse.observability.touched import note as note_lineage
from include.lakehouse.results import OperationResult

log = logging.getLogger(__name__)
DEFAULT_RETENTION_HOURS = 168


# Other formats that read a Delta table's own parquet files (Iceberg snapshots made with
# add_files) pin them: vacuum asks every pinner, by dotted path `fn(uri) -> set of absolute
# paths`, and does not delete while a file it would remove is still referenced elsewhere.
FILE_PINNERS: list[str] = ["include.lakehouse.formats.publish.pinned_files"]


def register_file_pinner(dotted_path: str) -> None:
    if dotted_path not in FILE_PINNERS:
        FILE_PINNERS.append(dotted_path)


def pinned_elsewhere(uri: str, candidates: Iterable[str]) -> dict[str, list[str]]:
    """pinner -> the candidate files (as vacuum names them) it still references."""
    import importlib

    absolute = {c: (c if os.path.isabs(c) or "://" in c else os.path.join(uri, c)) for c in candidates}
    found: dict[str, list[str]] = {}
    for dotted in FILE_PINNERS:
        module, _, fn = dotted.rpartition(".")
        pinned = getattr(importlib.import_module(module), fn)(uri)
        hits = sorted(c for c, path in absolute.items() if path.removeprefix("file://") in pinned)
        if hits:
            found[dotted] = hits
    return found


def min_retention_hours() -> int:
    return int(os.environ.get("LAKEHOUSE_VACUUM_MIN_RETENTION_HOURS", DEFAULT_RETENTION_HOURS))


def _optimize_result(uri: str, operation: str, started: float, dt: DeltaTable, metrics: dict) -> OperationResult:
    dt.update_incremental()
    return OperationResult(
        table=uri, operation=operation, version=dt.version(),
        files_added=int(metrics.get("numFilesAdded", 0)), files_removed=int(metrics.get("numFilesRemoved", 0)),
        skipped=int(metrics.get("numFilesAdded", 0)) == 0 and int(metrics.get("numFilesRemoved", 0)) == 0,
        seconds=round(time.perf_counter() - started, 4),
        details={k: metrics[k] for k in ("totalConsideredFiles", "totalFilesSkipped", "numBatches") if k in metrics},
    )


def _snapshots(uri: str, dt: DeltaTable | None):
    """For with_commit_retries: the caller's open snapshot `dt` brought up to date on the first
    try (saves opening the table again: most of a small table's maintenance), a newly opened
    one on every retry, so a retry always plans from the winner's commit."""
    handed = [dt]

    def fresh() -> DeltaTable:
        return _current(uri, handed.pop() if handed else None)

    return fresh


def _current(table: "str | TableSpec", dt: DeltaTable | None) -> DeltaTable:
    """`dt` brought up to the table's latest version, or the table opened."""
    if dt is None:
        return open_table(table)
    dt.update_incremental()
    return dt


Z_ORDER_MARK = "lakehouse.operation"
_NON_DATA_OPERATIONS = {"OPTIMIZE", "VACUUM START", "VACUUM END", "SET TBLPROPERTIES", "CHECKPOINT"}


def compact(table: "str | TableSpec", *, target_size_mb: float | None = None,
            partition_filters: list[tuple[str, str, Any]] | None = None, dt: DeltaTable | None = None) -> OperationResult:
    """Bin-pack small files into files of about `target_size_mb` (table policy by default).
    `dt`: the table already open (it is brought up to date and left at the result's version)."""
    started = time.perf_counter()
    uri, spec = resolve(table)
    size = target_size_mb or (spec.maintenance.target_file_size_mb if spec else 128)
    snapshot = _snapshots(uri, dt)

    def run():
        dt = snapshot()
        return dt, dt.optimize.compact(target_size=int(size * 1024 * 1024), partition_filters=partition_filters)

    dt, metrics = with_commit_retries(run, what=f"compact {uri}")
    return _optimize_result(uri, "compact", started, dt, metrics)


def z_order(table: "str | TableSpec", columns: Iterable[str] | None = None, *,
            target_size_mb: float | None = None, dt: DeltaTable | None = None) -> OperationResult:
    """Rewrite the table clustered on `columns` (table policy by default) for data skipping.
    `dt`: the table already open (it is brought up to date and left at the result's version)."""
    started = time.perf_counter()
    uri, spec = resolve(table)
    columns = list(columns or (spec.maintenance.z_order_by if spec else ()))
    if not columns:
        raise LakehouseError(f"table {uri}: no z-order columns; set maintenance.z_order_by in tables.yaml")
    known_dt = _current(uri, dt)
    known = {f.name for f in known_dt.schema().fields}
    if missing := [c for c in columns if c not in known]:
        raise LakehouseError(f"table {uri}: z-order column(s) {missing} not in the table ({sorted(known)}); "
                             "fix maintenance.z_order_by in tables.yaml")
    size = target_size_mb or (spec.maintenance.target_file_size_mb if spec else 128)

    snapshot = _snapshots(uri, known_dt)

    def run():
        fresh = snapshot()
        return fresh, fresh.optimize.z_order(
            columns, target_size=int(size * 1024 * 1024),
            commit_properties=CommitProperties(custom_metadata={Z_ORDER_MARK: "z_order", "zOrderBy": ",".join(columns)}),
        )

    dt, metrics = with_commit_retries(run, what=f"z-order {uri}")
    result = _optimize_result(uri, "z_order", started, dt, metrics)
    result.details["columns"] = columns
    return result


def vacuum(table: "str | TableSpec", *, retention_hours: int | None = None, dry_run: bool = False,
           override_reason: str | None = None, dt: DeltaTable | None = None) -> OperationResult:
    """Remove files no version inside the retention window needs.

    Retention below the guard raises RetentionGuardError unless `override_reason` is given.
    `dry_run=True` only lists the files (in details.files). While another format still
    references a file it would remove (FILE_PINNERS), nothing is deleted: the result is
    skipped, with the pinned files in details. When the listing names no file, nothing is
    deleted and the table is not listed a second time. `dt`: the table already open (brought
    up to date first).
    """
    started = time.perf_counter()
    uri, spec = resolve(table)
    hours = retention_hours if retention_hours is not None else (
        spec.maintenance.vacuum_retention_hours if spec else DEFAULT_RETENTION_HOURS)
    guard = min_retention_hours()
    if hours < guard and not override_reason:
        raise RetentionGuardError(
            f"table {uri}: vacuum retention {hours} h is below the {guard} h guard, which would destroy "
            f"time travel; use >= {guard} h or pass override_reason='why' to do it anyway"
        )
    if hours < guard:
        log.warning("vacuum %s with retention %s h below the %s h guard; reason: %s", uri, hours, guard, override_reason)
    dt = _current(uri, dt)
    candidates = dt.vacuum(retention_hours=hours, dry_run=True, enforce_retention_duration=hours >= guard)
    pinned = pinned_elsewhere(uri, candidates) if candidates else {}
    if pinned:
        count = len({f for hits in pinned.values() for f in hits})
        log.warning("vacuum %s refused: %d file(s) it would remove are still referenced by %s; publish the "
                    "other formats (publish_formats expires their snapshots with the Delta retention) and retry",
                    uri, count, ", ".join(pinned))
        return OperationResult(
            table=uri, operation="vacuum_dry_run" if dry_run else "vacuum", version=dt.version(), skipped=True,
            seconds=round(time.perf_counter() - started, 4),
            details={"retention_hours": hours, "files": list(candidates)[:1000], "would_remove": len(candidates),
                     "pinned_files": count, "pinned_by": {k: v[:100] for k, v in pinned.items()},
                     "refused": "files still referenced by another format"})
    if dry_run or not candidates:
        files = candidates
    else:
        files = dt.vacuum(retention_hours=hours, dry_run=False, enforce_retention_duration=hours >= guard)
        dt.update_incremental()
    return OperationResult(
        table=uri, operation="vacuum_dry_run" if dry_run else "vacuum", version=dt.version(),
        files_removed=0 if dry_run else len(files), seconds=round(time.perf_counter() - started, 4),
        details={"retention_hours": hours, "files": list(files)[:1000], "would_remove": len(files),
                 **({"override_reason": override_reason} if override_reason else {})},
    )


def checkpoint(table: "str | TableSpec", *, cleanup_logs: bool = True, dt: DeltaTable | None = None) -> OperationResult:
    """Write a checkpoint at the current version and drop expired log files.
    `dt`: the table already open (brought up to date first)."""
    started = time.perf_counter()
    uri, _ = resolve(table)
    dt = _current(uri, dt)
    dt.create_checkpoint()
    if cleanup_logs:
        dt.cleanup_metadata()
    return OperationResult(table=uri, operation="checkpoint", version=dt.version(),
                           seconds=round(time.perf_counter() - started, 4))


def history(table: "str | TableSpec", limit: int | None = None) -> list[dict[str, Any]]:
    """Commits, newest first (version, timestamp, operation, parameters, metrics)."""
    return open_table(table).history(limit)


def _as_utc(timestamp: datetime | str, uri: str) -> datetime:
    if isinstance(timestamp, str):
        try:
            timestamp = datetime.fromisoformat(timestamp.strip())
        except ValueError:
            raise LakehouseError(f"table {uri}: {timestamp!r} is not an ISO timestamp "
                                 "(e.g. 2024-05-01T12:00:00+00:00; UTC when no offset is given)") from None
    return timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=timezone.utc)


def _target_version(uri: str, dt: DeltaTable, version: int | None, timestamp: datetime | str | None) -> int:
    """The version a (version | timestamp) request means, or a clear refusal: a timestamp before
    the oldest version in the log or in the future has no version (delta-rs would quietly
    answer the first or the latest one)."""
    if version is not None and timestamp is not None:
        raise LakehouseError(f"table {uri}: give a version or a timestamp, not both "
                             f"(got version {version} and timestamp {timestamp})")
    current = dt.version()
    if version is not None:
        if version < 0 or version > current:
            raise VersionNotAvailableError(f"table {uri}: version {version} does not exist (current is {current})")
        return version
    when = _as_utc(timestamp, uri)
    if when > datetime.now(timezone.utc):
        raise VersionNotAvailableError(f"table {uri}: timestamp {when.isoformat()} is in the future "
                                       f"(current version {current} is the latest)")
    oldest = min(dt.history(), key=lambda c: c["version"])
    first = datetime.fromtimestamp(oldest["timestamp"] / 1000, timezone.utc)
    if when < first:
        raise VersionNotAvailableError(
            f"table {uri}: timestamp {when.isoformat()} is before the table's first version in its log "
            f"(version {oldest['version']} at {first.isoformat()}); no version of the table existed then")
    at = DeltaTable(dt.table_uri, storage_options=storage_options())
    at.load_as_version(when)
    return at.version()


def target_version(table: "str | TableSpec", *, version: int | None = None,
                   timestamp: datetime | str | None = None) -> int:
    """The version a read or restore with these arguments goes to (refused as they would be)."""
    uri, _ = resolve(table)
    return _target_version(uri, open_table(uri), version, timestamp)


def _load(uri: str, version: int | None, timestamp: datetime | str | None) -> DeltaTable:
    dt = open_table(uri)
    target = _target_version(uri, dt, version, timestamp)
    try:
        dt.load_as_version(target)
    except Exception as exc:
        raise VersionNotAvailableError(f"table {uri}: cannot load version {target}: {exc}") from exc
    _require_files(uri, dt)
    return dt


def _require_files(uri: str, dt: DeltaTable) -> None:
    """A version whose data files were vacuumed cannot be read or restored: say so plainly."""
    if "://" in uri and not uri.startswith("file://"):
        return  # object stores: delta-rs reports missing objects on read
    missing = [f for f in dt.file_uris() if not os.path.exists(f.removeprefix("file://"))]
    if missing:
        raise VersionNotAvailableError(
            f"table {uri}: version {dt.version()} was vacuumed ({len(missing)} data file(s) gone, "
            f"e.g. {os.path.basename(missing[0])}); pick a version inside the vacuum retention window"
        )


def read_table(table: "str | TableSpec", *, version: int | None = None, timestamp: datetime | str | None = None,
               columns: list[str] | None = None, filter: Any = None) -> pa.Table:
    """Read the table now, at a version, or as of a timestamp (time travel) into Arrow."""
    uri, spec = resolve(table)
    note_lineage("in", uri, spec.name if spec else None)
    dt = _load(uri, version, timestamp) if (version is not None or timestamp is not None) else open_table(uri)
    return dt.to_pyarrow_dataset().to_table(columns=columns, filter=filter)


def _app_ids_committed(dt: DeltaTable, after: int, up_to: int) -> set[str]:
    """App ids of the transactions recorded in commits after..up_to, from the commit files
    (delta-rs lists no app transactions). Only these can differ between the two versions."""
    from deltalake.fs import DeltaStorageHandler

    store = DeltaStorageHandler(dt.table_uri, storage_options())
    app_ids: set[str] = set()
    for version in range(after + 1, up_to + 1):
        try:
            text = store.open_input_stream(f"_delta_log/{version:020d}.json").read().decode("utf-8")
        except FileNotFoundError:
            raise LakehouseError(
                f"table {dt.table_uri}: commit {version} is no longer in the Delta log (log cleanup), so the "
                f"positions recorded after version {after} cannot be rolled back; restore to a later version"
            ) from None
        for line in text.splitlines():
            action = json.loads(line) if '"txn"' in line else {}
            if "txn" in action:
                app_ids.add(action["txn"]["appId"])
    return app_ids


def positions_at(dt: DeltaTable, version: int) -> dict[str, tuple[int | None, int | None]]:
    """app_id -> (position now, position at `version`) for every position that moved since."""
    at = DeltaTable(dt.table_uri, version=version, storage_options=storage_options())
    moved = {}
    for app_id in sorted(_app_ids_committed(dt, version, dt.version())):
        now, then = position(dt, app_id), position(at, app_id)
        if now != then:
            moved[app_id] = (now, then)
    return moved


def restore(table: "str | TableSpec", *, version: int | None = None,
            timestamp: datetime | str | None = None) -> OperationResult:
    """Restore the table to an earlier version/time as a new commit (history is kept), with the
    positions it records (Delta app transactions: Kafka offsets, loaded files, upstream versions)
    rolled back in the same commit. A plain Delta RESTORE keeps the newest app transactions, so
    ingest and CDC would skip everything the restore removed; here each position goes back to its
    value at the target, and one that did not exist there is FORGOTTEN (read as never), so the
    next run reads again what came after."""
    started = time.perf_counter()
    uri, spec = resolve(table)
    note_lineage("out", uri, spec.name if spec else None)
    if version is None and timestamp is None:
        raise LakehouseError(f"table {uri}: restore needs a version or a timestamp")

    def plan_and_commit():
        target = _load(uri, version, timestamp)
        restored_to = target.version()
        dt = open_table(uri)
        if restored_to == dt.version():
            raise LakehouseError(f"table {uri}: already at version {restored_to}; nothing to restore")
        moved = positions_at(dt, restored_to)
        transactions = {k: (then if then is not None else FORGOTTEN) for k, (_, then) in moved.items()}
        metrics = dt.restore(restored_to, commit_properties=commit_properties(
            transactions, {"lakehouse.operation": "restore", "restored_to_version": restored_to}))
        return dt, restored_to, moved, metrics

    dt, restored_to, moved, metrics = with_commit_retries(plan_and_commit, what=f"restore {uri}")
    dt.update_incremental()
    return OperationResult(
        table=uri, operation="restore", version=dt.version(),
        files_added=int(metrics.get("num_restored_file", 0)), files_removed=int(metrics.get("num_removed_file", 0)),
        seconds=round(time.perf_counter() - started, 4),
        details={"restored_to_version": restored_to,
                 "positions_reset": {k: [now, then] for k, (now, then) in moved.items()}},
    )


def read_changes(table: "str | TableSpec", *, starting_version: int = 0,
                 ending_version: int | None = None) -> pa.Table:
    """Change data feed rows (with _change_type, _commit_version, _commit_timestamp), with the
    view types delta-rs returns (string_view) made plain, so Arrow compute works on them."""
    uri, _ = resolve(table)
    dt = open_table(uri)
    if dt.metadata().configuration.get("delta.enableChangeDataFeed") != "true":
        raise LakehouseError(
            f"table {uri}: change data feed is not enabled; set change_data_feed: true in tables.yaml "
            "before the table is created"
        )
    feed = pa.table(dt.load_cdf(starting_version=starting_version, ending_version=ending_version).read_all())
    plain = {pa.string_view(): pa.string(), pa.binary_view(): pa.binary()}
    return feed.cast(pa.schema([f.with_type(plain.get(f.type, f.type)) for f in feed.schema]))


def feed_ranges(table: "str | TableSpec", done: int | None, current: int) -> list[tuple[int, int]]:
    """The version ranges of the change feed a consumer that applied everything up to `done`
    must read to reach `current`, oldest first, leaving out what restores undid.

    A restore commit's feed is file-level (every row of a removed file deleted, every row of a
    re-added one inserted), not the change it stands for, and the commits between its target
    and itself were undone: so a restore at R to X contributes nothing, and the reader goes on
    from X. A consumer that had already applied undone changes (X < done) cannot be caught up by
    reading: RestoredUpstreamError says to restore the consumer as well.
    """
    uri, _ = resolve(table)
    start = -1 if done is None else done
    if current <= start:
        return []
    dt = open_table(uri)
    restores = {}
    for commit in dt.history(max(dt.version() - start, 1)):
        if start < commit["version"] <= current and commit.get("operation") == "RESTORE":
            target = commit.get("restored_to_version", (commit.get("operationParameters") or {}).get("version"))
            if target is None:
                raise LakehouseError(f"table {uri}: restore commit {commit['version']} does not say which version "
                                     "it restored (restored to a timestamp by another tool); rebuild the consumer")
            restores[commit["version"]] = int(target)
    ranges, upper = [], current
    for restore_commit in sorted(restores, reverse=True):
        if restore_commit > upper:
            continue  # inside a range an even later restore undid
        if restore_commit < upper:
            ranges.append((restore_commit + 1, upper))
        upper = restores[restore_commit]
        if upper < start:
            raise RestoredUpstreamError(
                f"table {uri} was restored at version {restore_commit} to version {upper}, undoing versions "
                f"{upper + 1}..{restore_commit - 1}, but this consumer had already applied up to version {start}: "
                f"restore the consumer to its newest version that consumed no further than {upper} "
                f"(restore_table, dry run first; the upstream restore's report names it), then rerun")
    if upper > start:
        ranges.append((start + 1, upper))
    return sorted(ranges)


def read_changes_since(table: "str | TableSpec", done: int | None, current: int) -> pa.Table:
    """What changed after version `done` up to `current` (change feed rows), restores honoured
    (feed_ranges): the one way a consumer reads its upstream's feed."""
    ranges = feed_ranges(table, done, current)
    if not ranges:  # everything in between was undone: no rows, the feed's columns
        return read_changes(table, starting_version=current, ending_version=current).slice(0, 0)
    return pa.concat_tables([read_changes(table, starting_version=a, ending_version=b) for a, b in ranges],
                            promote_options="default")


def changed_since_z_order(table: "str | TableSpec", *, dt: DeltaTable | None = None) -> bool:
    """True when data was written after the last z-order (or the table was never z-ordered).
    `dt`: the table already open (brought up to date first)."""
    for commit in _current(table, dt).history():
        if commit.get(Z_ORDER_MARK) == "z_order":
            return False
        if commit.get("operation") not in _NON_DATA_OPERATIONS:
            return True
    return False


def files_for_point_lookup(table: "str | TableSpec", column: str, value: Any) -> int:
    """How many data files a reader must open for `column = value` after pruning by the
    per-file min/max statistics in the Delta log (what z-ordering improves)."""
    actions = add_actions(open_table(table), flatten=True)
    if not actions.num_rows:
        return 0
    lows, highs = actions.column(f"min.{column}").to_pylist(), actions.column(f"max.{column}").to_pylist()
    return sum(1 for lo, hi in zip(lows, highs) if lo is None or hi is None or lo <= value <= hi)


def table_stats(table: "str | TableSpec", *, dt: DeltaTable | None = None) -> dict[str, int]:
    """Files, bytes and version of the current snapshot. `dt`: the table already open (brought
    up to date first)."""
    dt = _current(table, dt)
    actions = add_actions(dt)
    size = pa.compute.sum(actions.column("size_bytes")).as_py() if actions.num_rows else 0
    return {"files": actions.num_rows, "bytes": int(size or 0), "version": dt.version()}


__all__ = ["compact", "z_order", "vacuum", "checkpoint", "history", "read_table", "restore", "positions_at", "target_version", "read_changes",
           "feed_ranges", "read_changes_since",
           "changed_since_z_order", "files_for_point_lookup", "table_stats", "with_commit_retries"]
