"""Applying ordered change events (CDC) to a current-state table, in one merge per batch.

Semantics: within a batch only the newest event per key counts (by the sequence column);
an event never overwrites a newer state already applied (the applied sequence is kept
per row in `_cdc_sequence`); redelivered duplicates change nothing; deletes are hard
deletes, remembered as tombstones (`<table>__cdc_tombstones`, one row per delete event:
key, sequence and, when given, the delete's source time) so that a late, older
insert/update cannot resurrect a deleted key and a type 2 dimension can close the deleted
version at the time the source deleted it. Tombstones are written before the merge; a
crash between the two leaves a batch whose rerun still applies the delete (an equal
sequence is not "behind" its own tombstone). The batch's positions (`transactions=`) are
committed with the merge, or alone in an empty commit when the merge changed nothing, and
the whole plan is re-made from a fresh snapshot on a commit conflict. Debezium envelope
parsing lives with the CDC DAG; this module takes flat rows: key columns, payload
columns, an op column (c/r/u/d) and a sequence column.
"""

from __future__ import annotations

import time
from typing import Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from include.lakehouse.errors import KeyColumnError
from include.lakehouse.failpoints import reach
from include.lakehouse.results import OperationResult
from include.lakehouse.tables.delta import (
    append, check_keys, check_positions, conform_schema, ensure_table, merge_clauses, position, quote, to_arrow,
    try_open, with_commit_retries,
)
from include.lakehouse.observability.touched import note as note_lineage
from include.lakehouse.tables.registry import TableSpec, resolve

APPLIED_SEQUENCE = "_cdc_sequence"
UPSERT_OPS = {"c", "r", "u"}
DELETE_OP = "d"


def tombstone_uri(uri: str) -> str:
    """Where a table's delete tombstones live: beside it, `<table>__cdc_tombstones`."""
    return uri.rstrip("/") + "__cdc_tombstones"


def latest_per_key(changes: pa.Table, keys: list[str], sequence: str) -> pa.Table:
    """Keep only the newest event per key (highest sequence; the last one on ties)."""
    indexed = changes.append_column("__row", pa.array(range(changes.num_rows), pa.int64()))
    ordered = indexed.sort_by([(k, "ascending") for k in keys] + [(sequence, "ascending"), ("__row", "ascending")])
    if ordered.num_rows == 0:
        return ordered.drop_columns(["__row"])
    key_cols = [ordered.column(k) for k in keys]
    last = pa.array([True] * ordered.num_rows)
    if ordered.num_rows > 1:
        differs = None
        for col in key_cols:
            ne = pc.not_equal(col.slice(1), col.slice(0, ordered.num_rows - 1))
            differs = ne if differs is None else pc.or_(differs, ne)
        last = pa.concat_arrays([differs.combine_chunks(), pa.array([True])])
    return ordered.filter(last).drop_columns(["__row"])


def apply_cdc(
    table: "str | TableSpec",
    changes: Any,
    *,
    keys: Iterable[str] | None = None,
    sequence_column: str | None = None,
    op_column: str = "op",
    source_time_column: str | None = None,
    transactions: dict[str, int] | None = None,
    expected: dict[str, int | None] | None = None,
) -> OperationResult:
    """Apply a batch of change events to `table` (see the module docstring for semantics).

    `transactions` (app_id -> version) are recorded in the same commit as the merge, e.g.
    the source table version this batch was read up to: the next run starts after it.
    `expected` (app_id -> version the caller read before planning) is checked on the
    snapshot the merge commits against; when it moved, ConcurrentWriteError asks the caller
    to re-plan (no retry here then: the caller's plan is stale, not ours).
    `source_time_column` (e.g. Debezium's source.ts_ms as a timestamp) is kept with each
    tombstone: the time the source deleted the key.

    Returns rows inserted/updated/deleted and `rows_skipped` (superseded within the batch,
    stale against applied state or tombstones, or duplicates). Rerunning a batch is a no-op.
    """
    started = time.perf_counter()
    uri, spec = resolve(table)
    note_lineage("out", uri, spec.name if spec else None)
    changes = to_arrow(changes)
    sequence_column = sequence_column or (spec.sequence_column if spec else None)
    if not sequence_column or sequence_column not in changes.column_names:
        raise KeyColumnError(
            f"table {uri}: sequence column '{sequence_column}' is not in the changes "
            f"({changes.column_names}); pass sequence_column= (e.g. the source LSN)"
        )
    if op_column not in changes.column_names:
        raise KeyColumnError(f"table {uri}: op column '{op_column}' missing from the changes")
    if source_time_column and source_time_column not in changes.column_names:
        raise KeyColumnError(f"table {uri}: source time column '{source_time_column}' missing from the changes")
    keys = check_keys(uri, changes, keys or (spec.keys if spec else ()))
    unknown = set(pc.unique(changes.column(op_column)).to_pylist()) - UPSERT_OPS - {DELETE_OP}
    if unknown:
        raise KeyColumnError(f"table {uri}: unknown op value(s) {sorted(map(str, unknown))}; expected c, r, u, d")
    if changes.column(sequence_column).null_count:
        raise KeyColumnError(f"table {uri}: sequence column '{sequence_column}' has nulls")

    received = changes.num_rows
    newest = latest_per_key(changes, keys, sequence_column)
    newest = newest.rename_columns([APPLIED_SEQUENCE if c == sequence_column else c for c in newest.column_names])
    newest = newest.set_column(
        newest.schema.get_field_index(APPLIED_SEQUENCE), APPLIED_SEQUENCE,
        newest.column(APPLIED_SEQUENCE).cast(pa.int64()),
    )
    stone_columns = keys + [APPLIED_SEQUENCE] + ([source_time_column] if source_time_column else [])

    def plan_and_commit() -> OperationResult:
        dt = try_open(uri)
        check_positions(uri, dt, expected)
        stones = tombstones(uri, keys + [APPLIED_SEQUENCE])
        batch = _drop_behind_tombstones(newest, stones, keys, op_column)
        is_delete = pc.equal(batch.column(op_column), DELETE_OP)
        deletes = batch.filter(is_delete).select(stone_columns)
        if deletes.num_rows:  # tombstones first: a crash after this leaves a rerunnable state
            _record_tombstones(uri, deletes, keys, stones)
        reach("cdc.after_tombstones")
        rows = batch.drop_columns([op_column])
        if dt is None:  # created empty, so the first merge is conflict-checked like any other
            ensure_table(uri, rows.schema, spec)
            dt = try_open(uri)
            check_positions(uri, dt, expected)
        planned = {k: position(dt, k) for k in transactions or {}}
        before = dt.version()
        source, evolve = conform_schema(uri, dt, rows)
        source = source.append_column(op_column, batch.column(op_column))
        on = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in keys)
        newer = f"s.{APPLIED_SEQUENCE} > t.{APPLIED_SEQUENCE}"
        op = f"s.{quote(op_column)}"
        assignments = {quote(c): f"s.{quote(c)}" for c in rows.column_names}
        metrics = merge_clauses(dt, source, on=on, merge_schema=evolve, transactions=transactions, clauses=[
            ("matched_delete", {"predicate": f"{op} = '{DELETE_OP}' AND {newer}"}),
            ("matched_update", {"updates": assignments, "predicate": f"{op} <> '{DELETE_OP}' AND {newer}"}),
            ("not_matched_insert", {"updates": assignments, "predicate": f"{op} <> '{DELETE_OP}'"}),
        ])
        version = dt.version()
        if version == before and transactions:  # delta-rs commits nothing for a merge that changed nothing
            version = append(uri, pa.schema(dt.schema().to_arrow()).empty_table(), transactions=transactions,
                             expected=planned).version
        inserted = metrics["num_target_rows_inserted"]
        updated = metrics["num_target_rows_updated"]
        deleted = metrics["num_target_rows_deleted"]
        return OperationResult(
            table=uri, operation="apply_cdc", version=version,
            rows_inserted=inserted, rows_updated=updated, rows_deleted=deleted,
            rows_skipped=received - inserted - updated - deleted,
            files_added=metrics.get("num_target_files_added", 0),
            files_removed=metrics.get("num_target_files_removed", 0),
            seconds=round(time.perf_counter() - started, 4),
            details={"events_received": received, "keys_in_batch": batch.num_rows},
        )

    if expected is not None:
        return plan_and_commit()
    return with_commit_retries(plan_and_commit, what=f"apply CDC to {uri}")


def tombstones(uri: str, columns: list[str] | None = None) -> pa.Table | None:
    """The delete events recorded for the table at `uri` (None when it never had one)."""
    tomb = try_open(tombstone_uri(uri))
    if tomb is None:
        return None
    return tomb.to_pyarrow_table(columns=columns)


def _drop_behind_tombstones(batch: pa.Table, stones: pa.Table | None, keys: list[str], op_column: str) -> pa.Table:
    """Drop upserts whose sequence is not newer than the key's latest recorded delete.

    Deletes are never dropped: one whose tombstone a killed run already recorded must still
    be applied, and the merge ignores a delete older than the row it finds."""
    if batch.num_rows == 0 or stones is None or stones.num_rows == 0:
        return batch
    latest = stones.group_by(keys).aggregate([(APPLIED_SEQUENCE, "max")]).rename_columns(keys + ["__deleted_at"])
    deleted_at = np.full(batch.num_rows, np.iinfo(np.int64).min)
    rows, found = _matches(batch, latest, keys)
    deleted_at[rows] = latest.column("__deleted_at").take(pa.array(found)).to_numpy()
    keep = (batch.column(APPLIED_SEQUENCE).to_numpy() > deleted_at) | pc.equal(
        batch.column(op_column), DELETE_OP).to_numpy(zero_copy_only=False)
    return batch.filter(pa.array(keep))


def _matches(rows: pa.Table, other: pa.Table, on: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (row in `rows`, row in `other`) equal on the columns `on` (inner join)."""
    left = rows.select(on).append_column("__left", pa.array(np.arange(rows.num_rows), pa.int64()))
    right = other.select(on).cast(left.select(on).schema).append_column(
        "__right", pa.array(np.arange(other.num_rows), pa.int64()))
    pairs = left.join(right, keys=on, join_type="inner")
    return pairs.column("__left").to_numpy(), pairs.column("__right").to_numpy()


def _record_tombstones(uri: str, deletes: pa.Table, keys: list[str], known: pa.Table | None) -> None:
    """Add the batch's delete events not recorded yet (one row per key and sequence: an
    append, cheaper than a merge; two runs racing may both add one, which the lookups,
    taking the newest or the first after a state, do not mind)."""
    if known is not None and known.num_rows:
        recorded, _ = _matches(deletes, known, keys + [APPLIED_SEQUENCE])
        fresh = np.ones(deletes.num_rows, bool)
        fresh[recorded] = False
        deletes = deletes.filter(pa.array(fresh))
    if deletes.num_rows:
        append(tombstone_uri(uri), deletes)


__all__ = ["apply_cdc", "latest_per_key", "tombstone_uri", "tombstones", "APPLIED_SEQUENCE"]
