"""Applying ordered change events (CDC) to a current-state table, in one merge per batch.

Semantics: within a batch only the newest event per key counts (by the sequence column);
an event never overwrites a newer state already applied (the applied sequence is kept
per row in `_cdc_sequence`); redelivered duplicates change nothing; deletes are hard
deletes, remembered as tombstones so that a late, older insert/update cannot resurrect
a deleted key. Debezium envelope parsing lives with the CDC DAG; this module takes flat
rows: key columns, payload columns, an op column (c/r/u/d) and a sequence column.
"""

from __future__ import annotations

import time
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import write_deltalake

from include.lakehouse.config import TableSpec, resolve, storage_options
from include.lakehouse.delta import check_keys, commit_properties, conform_schema, quote, to_arrow, try_open
from include.lakehouse.errors import KeyColumnError
from include.lakehouse.results import OperationResult

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
    transactions: dict[str, int] | None = None,
) -> OperationResult:
    """Apply a batch of change events to `table` (see the module docstring for semantics).

    `transactions` (app_id -> version) are recorded in the same commit as the merge, e.g.
    the source table version this batch was read up to: the next run starts after it.

    Returns rows inserted/updated/deleted and `rows_skipped` (superseded within the batch,
    stale against applied state or tombstones, or duplicates). Rerunning a batch is a no-op.
    """
    started = time.perf_counter()
    uri, spec = resolve(table)
    changes = to_arrow(changes)
    sequence_column = sequence_column or (spec.sequence_column if spec else None)
    if not sequence_column or sequence_column not in changes.column_names:
        raise KeyColumnError(
            f"table {uri}: sequence column '{sequence_column}' is not in the changes "
            f"({changes.column_names}); pass sequence_column= (e.g. the source LSN)"
        )
    if op_column not in changes.column_names:
        raise KeyColumnError(f"table {uri}: op column '{op_column}' missing from the changes")
    keys = check_keys(uri, changes, keys or (spec.keys if spec else ()))
    unknown = set(pc.unique(changes.column(op_column)).to_pylist()) - UPSERT_OPS - {DELETE_OP}
    if unknown:
        raise KeyColumnError(f"table {uri}: unknown op value(s) {sorted(map(str, unknown))}; expected c, r, u, d")
    if changes.column(sequence_column).null_count:
        raise KeyColumnError(f"table {uri}: sequence column '{sequence_column}' has nulls")

    received = changes.num_rows
    batch = latest_per_key(changes, keys, sequence_column)
    batch = batch.rename_columns([APPLIED_SEQUENCE if c == sequence_column else c for c in batch.column_names])
    batch = batch.set_column(
        batch.schema.get_field_index(APPLIED_SEQUENCE), APPLIED_SEQUENCE,
        batch.column(APPLIED_SEQUENCE).cast(pa.int64()),
    )
    batch = _drop_behind_tombstones(uri, batch, keys)
    is_delete = pc.equal(batch.column(op_column), DELETE_OP)
    deletes = batch.filter(is_delete).select(keys + [APPLIED_SEQUENCE])
    if deletes.num_rows:  # tombstones first: a crash after this leaves a rerunnable state
        _record_tombstones(uri, deletes, keys)

    dt = try_open(uri)
    if dt is None:
        rows = batch.filter(pc.invert(is_delete)).drop_columns([op_column])
        write_deltalake(uri, rows, configuration=spec.configuration if spec else None,
                        storage_options=storage_options(), commit_properties=commit_properties(transactions))
        dt = try_open(uri)
        return OperationResult(table=uri, operation="apply_cdc", version=dt.version(),
                               rows_inserted=rows.num_rows, rows_skipped=received - rows.num_rows,
                               files_added=len(dt.file_uris()),
                               seconds=round(time.perf_counter() - started, 4))

    target_columns = [c for c in batch.column_names if c != op_column]
    source, evolve = conform_schema(uri, dt, batch.drop_columns([op_column]))
    source = source.append_column(op_column, batch.column(op_column))
    on = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in keys)
    newer = f"s.{APPLIED_SEQUENCE} > t.{APPLIED_SEQUENCE}"
    op = f"s.{quote(op_column)}"
    assignments = {quote(c): f"s.{quote(c)}" for c in target_columns}
    metrics = (
        dt.merge(source, predicate=on, source_alias="s", target_alias="t", merge_schema=evolve,
                 commit_properties=commit_properties(transactions))
        .when_matched_delete(predicate=f"{op} = '{DELETE_OP}' AND {newer}")
        .when_matched_update(updates=assignments, predicate=f"{op} <> '{DELETE_OP}' AND {newer}")
        .when_not_matched_insert(updates=assignments, predicate=f"{op} <> '{DELETE_OP}'")
        .execute()
    )
    inserted = metrics["num_target_rows_inserted"]
    updated = metrics["num_target_rows_updated"]
    deleted = metrics["num_target_rows_deleted"]
    dt.update_incremental()
    return OperationResult(
        table=uri, operation="apply_cdc", version=dt.version(),
        rows_inserted=inserted, rows_updated=updated, rows_deleted=deleted,
        rows_skipped=received - inserted - updated - deleted,
        files_added=metrics.get("num_target_files_added", 0),
        files_removed=metrics.get("num_target_files_removed", 0),
        seconds=round(time.perf_counter() - started, 4),
        details={"events_received": received, "keys_in_batch": batch.num_rows},
    )


def _drop_behind_tombstones(uri: str, batch: pa.Table, keys: list[str]) -> pa.Table:
    """Drop upserts whose sequence is not newer than the key's recorded delete."""
    tomb = try_open(tombstone_uri(uri))
    if tomb is None or batch.num_rows == 0:
        return batch
    stones = tomb.to_pyarrow_table(columns=keys + [APPLIED_SEQUENCE]).rename_columns(keys + ["__deleted_at"])
    joined = batch.join(stones, keys=keys, join_type="left outer")
    keep = pc.or_kleene(
        pc.is_null(joined.column("__deleted_at")),
        pc.greater(joined.column(APPLIED_SEQUENCE), joined.column("__deleted_at")),
    )
    return joined.filter(pc.fill_null(keep, True)).drop_columns(["__deleted_at"]).select(batch.column_names)


def _record_tombstones(uri: str, deletes: pa.Table, keys: list[str]) -> None:
    target = tombstone_uri(uri)
    tomb = try_open(target)
    if tomb is None:
        write_deltalake(target, deletes, storage_options=storage_options())
        return
    on = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in keys)
    (
        tomb.merge(deletes, predicate=on, source_alias="s", target_alias="t")
        .when_matched_update_all(predicate=f"s.{APPLIED_SEQUENCE} > t.{APPLIED_SEQUENCE}")
        .when_not_matched_insert_all()
        .execute()
    )


__all__ = ["apply_cdc", "latest_per_key", "tombstone_uri", "APPLIED_SEQUENCE"]
