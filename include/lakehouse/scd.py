"""Slowly changing dimensions: type 2 history with type 1 corrections, in one merge per batch.

For every key touched by a batch, the key's history is recomputed from its stored versions
plus the new changes, ordered by effective time; only rows that differ are merged back.
That makes late-arriving changes land at their right place (splitting the interval they
fall into), makes a rerun of the same batch a no-op, and keeps surrogate keys stable: a
stored version keeps its `<sk>`; a new version gets a 64-bit hash of the natural key and
`valid_from`. The history is computed on sorted Arrow columns with vectorised neighbour
comparisons (one sort per batch, no per-key Python), so the Delta merge dominates the cost.

Output columns: <surrogate_key>, keys, tracked (type 2), type1, valid_from, valid_to
(next version's valid_from, null while open), is_current, is_deleted (the version was
closed by a source delete), row_hash (64-bit hash of the tracked columns).
"""

from __future__ import annotations

import time
from typing import Any, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import write_deltalake

from include.lakehouse.config import TableSpec, resolve, storage_options
from include.lakehouse.delta import commit_properties, to_arrow, try_open
from include.lakehouse.errors import KeyColumnError
from include.lakehouse.results import OperationResult

META = ("valid_from", "valid_to", "is_current", "is_deleted", "row_hash")


def apply_scd2(
    table: "str | TableSpec",
    changes: Any,
    *,
    keys: Iterable[str],
    tracked: Iterable[str],
    type1: Iterable[str] = (),
    effective_column: str = "changed_at",
    deleted_column: str | None = None,
    surrogate_key: str = "sk",
    transactions: dict[str, int] | None = None,
) -> OperationResult:
    """Apply a batch of source changes to a type 2 dimension.

    `changes` holds one row per source change: keys, tracked and type 1 columns, the
    change's source time in `effective_column` and, optionally, a boolean
    `deleted_column` (true: the source row was deleted at that time). Of two changes of a
    key at the same time, the later one in the batch wins.
    Result counts: rows_inserted (new versions), rows_updated (versions closed or
    corrected), rows_deleted (versions merged away by a late change), details.late.
    `transactions` (app_id -> version) are recorded in the same commit (source position).
    """
    started = time.perf_counter()
    uri, _ = resolve(table)
    keys, tracked, type1 = list(keys), list(tracked), list(type1)
    data = to_arrow(changes)
    needed = keys + tracked + type1 + [effective_column] + ([deleted_column] if deleted_column else [])
    missing = [c for c in needed if c not in data.column_names]
    if missing:
        raise KeyColumnError(f"table {uri}: SCD2 change columns {missing} missing; the data has {data.column_names}")
    if data.column(effective_column).null_count:
        raise KeyColumnError(f"table {uri}: effective time column '{effective_column}' has nulls")

    dt = try_open(uri)
    source, late = _plan(data, dt, keys, tracked, type1, effective_column, deleted_column, surrogate_key)

    def result(**counts) -> OperationResult:
        return OperationResult(table=uri, operation="apply_scd2", version=dt.version(),
                               seconds=round(time.perf_counter() - started, 4),
                               details={"late": late, "changes": data.num_rows}, **counts)

    if dt is None:
        history = source.drop_columns(["__action"])
        write_deltalake(uri, history, storage_options=storage_options(), commit_properties=commit_properties(transactions))
        dt = try_open(uri)
        return result(rows_inserted=history.num_rows)

    target = pa.schema(dt.schema().to_arrow())
    if source.num_rows == 0:
        if transactions:  # nothing to change, but the source position still moves on
            write_deltalake(uri, target.empty_table(), mode="append", commit_properties=commit_properties(transactions),
                            storage_options=storage_options())
            dt.update_incremental()
        return result(skipped=True, rows_skipped=data.num_rows)
    source = source.cast(pa.schema([target.field(f.name) if f.name in target.names else f for f in source.schema]))
    sk = surrogate_key
    metrics = (
        dt.merge(source, predicate=f"t.{sk} = s.{sk}", source_alias="s", target_alias="t", streamed_exec=True,
                 commit_properties=commit_properties(transactions))
        .when_matched_delete(predicate="s.__action = 'delete'")
        .when_matched_update_all(predicate="s.__action = 'upsert'", except_cols=["__action"])
        .when_not_matched_insert_all(predicate="s.__action = 'upsert'", except_cols=["__action"])
        .execute()
    )
    dt.update_incremental()
    return result(
        rows_inserted=metrics["num_target_rows_inserted"], rows_updated=metrics["num_target_rows_updated"],
        rows_deleted=metrics["num_target_rows_deleted"],
        files_added=metrics.get("num_target_files_added", 0), files_removed=metrics.get("num_target_files_removed", 0),
    )


def _hash(table: pa.Table, columns: list[str], as_text: bool = False) -> np.ndarray:
    """64-bit hash per row of `columns` as int64 (`as_text`: of their string forms, null-safe)."""
    if not columns:
        return np.zeros(table.num_rows, np.int64)
    frame = table.select(columns).to_pandas()
    if as_text:
        frame = frame.astype("string").fillna("\x00")
    return pd.util.hash_pandas_object(frame, index=False).to_numpy().view(np.int64)


def _same(a: pa.ChunkedArray | pa.Array, b: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Null-safe element-wise equality as a numpy bool array."""
    equal = pc.fill_null(pc.equal(a, b), False)
    both_null = pc.and_(pc.is_null(a), pc.is_null(b))
    return pc.or_(equal, both_null).to_numpy(zero_copy_only=False)


def _same_as_previous(table: pa.Table, columns: list[str]) -> np.ndarray:
    """Row i equals row i-1 in all `columns` (row 0: False)."""
    out = np.zeros(table.num_rows, bool)
    if table.num_rows > 1:
        out[1:] = True
        for name in columns:
            column = table.column(name)
            out[1:] &= _same(column.slice(1), column.slice(0, table.num_rows - 1))
    return out


def _stored_versions(dt, batch: pa.Table, keys: list[str]) -> pa.Table:
    """Stored history of the keys present in the batch (one scan; is_in on the first key)."""
    table = dt.to_pyarrow_table()
    first = keys[0]
    wanted = pc.unique(batch.column(first)).cast(table.schema.field(first).type)
    column = table.column(first)
    if pa.types.is_integer(column.type) and not column.null_count and not wanted.null_count:
        hit = pa.array(np.isin(column.to_numpy(), wanted.to_numpy()))  # about 5x faster than pc.is_in
    else:
        hit = pc.is_in(column, value_set=wanted)
    stored = table.filter(hit)
    if len(keys) > 1 and stored.num_rows:  # narrow to the exact composite keys
        pairs = batch.select(keys).group_by(keys).aggregate([])
        pairs = pairs.append_column("__hit", pa.array(np.ones(pairs.num_rows, bool)))
        stored = stored.join(pairs.cast(pa.schema([stored.schema.field(k) for k in keys] + [pairs.schema.field("__hit")])),
                             keys=keys, join_type="inner").drop_columns(["__hit"])
    return stored


def _plan(data: pa.Table, dt, keys, tracked, type1, effective, deleted, sk) -> tuple[pa.Table, int]:
    """Merge rows (with `__action` upsert/delete) that turn the stored history into the new one."""
    values = keys + tracked + type1
    n = data.num_rows
    flags = (pc.fill_null(data.column(deleted), False) if deleted else pa.array(np.zeros(n, bool)))
    incoming = data.select(values).append_column("valid_from", data.column(effective))
    stored = _stored_versions(dt, data, keys) if dt is not None else None
    if stored is not None:
        incoming = incoming.cast(pa.schema([stored.schema.field(c) for c in incoming.column_names]))
    incoming = incoming.append_column("__delete", flags).append_column(
        "__order", pa.array(np.ones(n, np.int8))).append_column(
        "__seq", pa.array(np.arange(n, dtype=np.int64))).append_column("__sk", pa.nulls(n, pa.int64()))
    parts, late = [incoming], 0
    if stored is not None and stored.num_rows:
        m = stored.num_rows
        versions = stored.select(values + ["valid_from"]).append_column(
            "__delete", pa.array(np.zeros(m, bool))).append_column("__order", pa.array(np.zeros(m, np.int8))).append_column(
            "__seq", pa.array(np.arange(m, dtype=np.int64))).append_column("__sk", stored.column(sk).cast(pa.int64()))
        # a version closed by a delete is re-expressed as a delete event at its valid_to
        closed = stored.filter(pc.fill_null(stored.column("is_deleted"), False))
        deletes = versions.take(pc.indices_nonzero(pc.fill_null(stored.column("is_deleted"), False)))
        deletes = deletes.set_column(deletes.schema.get_field_index("valid_from"), "valid_from", closed.column("valid_to"))
        deletes = deletes.set_column(deletes.schema.get_field_index("__delete"), "__delete",
                                     pa.array(np.ones(closed.num_rows, bool)))
        deletes = deletes.set_column(deletes.schema.get_field_index("__sk"), "__sk", pa.nulls(closed.num_rows, pa.int64()))
        parts = [versions, deletes, incoming]
    events = pa.concat_tables(parts).combine_chunks()
    events = events.take(pc.sort_indices(events, [(c, "ascending") for c in keys + ["valid_from", "__order", "__seq"]]))
    if not events.num_rows:
        return events.select([]).append_column("__action", pa.array([], pa.string())), 0

    same_key = _same_as_previous(events, keys)
    position = np.arange(events.num_rows)
    starts = np.flatnonzero(~same_key)
    from_store = events.column("__order").to_numpy() == 0
    # late: a change with a stored version of its key after it (same time sorts stored first)
    last_stored = np.repeat(np.maximum.reduceat(np.where(from_store, position, -1), starts),
                            np.diff(np.append(starts, events.num_rows)))
    late = int(np.count_nonzero(~from_store & (last_stored > position)))

    # one row per (key, valid_from): the newest change wins, a stored version keeps its surrogate key
    same_time = same_key & _same_as_previous(events, ["valid_from"])
    last_of_run = np.ones(len(same_time), bool)
    last_of_run[:-1] = ~same_time[1:]
    run_start = np.maximum.accumulate(np.where(same_time, 0, position))
    from_store &= pc.is_valid(events.column("__sk")).to_numpy(zero_copy_only=False)  # not a re-expressed delete
    stored_sk = pc.fill_null(events.column("__sk"), 0).to_numpy()
    stored_row = events.column("__seq").to_numpy()
    keep = np.flatnonzero(last_of_run)
    has_sk, carried, origin = from_store[run_start][keep], stored_sk[run_start][keep], stored_row[run_start][keep]
    events = events.take(keep).drop_columns(["__order", "__seq", "__sk"])
    same_key = _same_as_previous(events, keys)
    is_delete = events.column("__delete").to_numpy(zero_copy_only=False)

    if type1:  # type 1: the newest non-delete value applies to every version of the key
        starts = np.flatnonzero(~same_key)
        candidate = np.where(is_delete, -1, np.arange(len(is_delete)))
        newest = np.maximum.reduceat(candidate, starts) if len(starts) else candidate
        pick = np.repeat(newest, np.diff(np.append(starts, len(is_delete))))
        for name in type1:
            values_ = events.column(name).take(pa.array(np.where(pick < 0, 0, pick)))
            values_ = pc.if_else(pa.array(pick < 0), pa.nulls(len(pick), values_.type), values_)
            events = events.set_column(events.schema.get_field_index(name), name, values_)

    # a change that repeats the state before it is not a new version (nor is a second delete)
    prev_delete = np.roll(is_delete, 1)
    repeated = same_key & (prev_delete == is_delete)
    repeated &= is_delete | _same_as_previous(events, tracked) if tracked else repeated
    survivors = np.flatnonzero(~repeated)
    events, is_delete = events.take(survivors), is_delete[survivors]
    has_sk, carried, origin = has_sk[survivors], carried[survivors], origin[survivors]

    next_same = np.zeros(events.num_rows, bool)
    next_same[:-1] = _same_as_previous(events, keys)[1:]
    valid_from = events.column("valid_from")
    following = pc.take(valid_from, pa.array(np.minimum(np.arange(1, events.num_rows + 1), max(events.num_rows - 1, 0))))
    valid_to = pc.if_else(pa.array(next_same), following, pa.nulls(events.num_rows, valid_from.type))
    closed_by_delete = np.zeros(events.num_rows, bool)
    closed_by_delete[:-1] = is_delete[1:]
    closed_by_delete &= next_same
    alive = np.flatnonzero(~is_delete)
    history = events.select(values + ["valid_from"]).append_column("valid_to", valid_to).take(alive)
    history = history.append_column("is_current", pa.array(~next_same[alive])).append_column(
        "is_deleted", pa.array(closed_by_delete[alive])).append_column("row_hash", pa.array(_hash(history, tracked, as_text=True)))
    sks, fresh = carried[alive], np.flatnonzero(~has_sk[alive])
    sks[fresh] = _hash(history.take(fresh), keys + ["valid_from"])
    history = history.add_column(0, sk, pa.array(sks))
    columns = [sk] + values + list(META)
    history = history.select(columns)
    if stored is None:
        return history.append_column("__action", pa.array(["upsert"] * history.num_rows, pa.string())), late
    return _diff(stored.select(columns), history, has_sk[alive], origin[alive]), late


def _diff(stored: pa.Table, history: pa.Table, has_stored: np.ndarray, origin: np.ndarray) -> pa.Table:
    """Merge rows: history rows that are new or differ from the stored row they carry the
    surrogate key of (upsert), and stored rows no history row carries (delete).
    `origin[i]` is the stored row index of history row i where `has_stored[i]`."""
    pairs = np.flatnonzero(has_stored)
    changed = ~has_stored
    old = stored.take(origin[pairs])
    new = history.take(pairs)
    differs = np.zeros(len(pairs), bool)
    for name in history.column_names[1:]:  # the surrogate key is equal by construction
        differs |= ~_same(new.column(name), old.column(name))
    changed[pairs] = differs
    upserts = history.filter(pa.array(changed))
    gone = np.ones(stored.num_rows, bool)
    gone[origin[pairs]] = False
    deletes = stored.filter(pa.array(gone)).cast(history.schema)
    return pa.concat_tables([
        upserts.append_column("__action", pa.array(["upsert"] * upserts.num_rows, pa.string())),
        deletes.append_column("__action", pa.array(["delete"] * deletes.num_rows, pa.string())),
    ])
