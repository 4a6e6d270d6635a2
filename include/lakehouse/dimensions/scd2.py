"""Slowly changing dimensions: type 2 history with type 1 corrections, in one commit per batch.

For every key touched by a batch, the key's history is recomputed from its stored versions
plus the new changes, ordered by effective time; only rows that differ are written back.
That makes late-arriving changes land at their right place (splitting the interval they
fall into), makes a rerun of the same batch a no-op, and keeps surrogate keys stable: a
stored version keeps its `<sk>`; a new version gets a 64-bit hash of the natural key and
`valid_from`. The history is decided on sorted integer arrays (a version's tracked state is
its row hash) with vectorised neighbour comparisons, one sort per batch and no per-key Python;
values are taken once at the end, so the Delta write dominates the cost. A batch and the
source position it stands for commit together (an empty commit when nothing changed), on
the snapshot the plan was made from; a commit conflict (a concurrent run, a compaction)
re-plans from a fresh snapshot, so a batch is applied once.

The write: the batch's keys are summed up in a few ranges of the first key column (cut at the
widest gaps between them); the plan reads the rows in those ranges (only the files whose
statistics may hold some) and the commit replaces exactly those rows (`replace_where`): the
rows read, without the stored versions the new history changes or drops, plus the new and
changed versions - what a merge on the surrogate key leaves there, without the merge's join
(half a merge's time). Commit metadata records the new versions as the rows added. A merge of
the changed rows on the surrogate key instead: a dimension with a change data feed (its feed
shows updates as updates), partitioned or with columns beyond the ones below, a batch with a
null key or keys neither integers nor strings, the first batch of a new table, and batches
planned elsewhere (`planner=`, Spark).

Output columns: <surrogate_key>, keys, tracked (type 2), type1, valid_from, valid_to
(next version's valid_from, null while open), is_current, is_deleted (the version was
closed by a source delete), row_hash (64-bit hash of the tracked columns).
Never builds a table path or writes Delta itself: the writes go through tables.delta.
"""

from __future__ import annotations

import time
from typing import Any, Iterable, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.core.util.hashing import combine_hash_arrays

from include.lakehouse.errors import KeyColumnError
from include.lakehouse.observability.touched import note as note_lineage
from include.lakehouse.results import OperationResult
from include.lakehouse.tables.delta import (
    check_positions, commit_positions, ensure_table, merge_clauses, quote, replace_where, to_arrow, try_open,
    with_commit_retries,
)
from include.lakehouse.tables.registry import TableSpec, resolve

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
    expected: dict[str, int | None] | None = None,
    planner: Any = None,
) -> OperationResult:
    """Apply a batch of source changes to a type 2 dimension.

    `changes` holds one row per source change: keys, tracked and type 1 columns, the
    change's source time in `effective_column` and, optionally, a boolean
    `deleted_column` (true: the source row was deleted at that time). Of two changes of a
    key at the same time, the later one in the batch wins.
    Result counts: rows_inserted (new versions), rows_updated (versions closed or
    corrected), rows_deleted (versions merged away by a late change), details.late.
    `transactions` (app_id -> version) are recorded in the same commit (source position),
    also when nothing changed (an empty commit). The plan is re-made from a fresh snapshot
    on a commit conflict; with `expected` (app_id -> version the caller planned from),
    moved positions raise ConcurrentWriteError for the caller to re-plan instead.
    `planner` replaces `_plan` (same signature), e.g. spark/changes.py's planner on Spark.
    """
    started = time.perf_counter()
    uri, spec = resolve(table)
    note_lineage("out", uri, spec.name if spec else None)
    keys, tracked, type1 = list(keys), list(tracked), list(type1)
    data = to_arrow(changes)
    needed = keys + tracked + type1 + [effective_column] + ([deleted_column] if deleted_column else [])
    missing = [c for c in needed if c not in data.column_names]
    if missing:
        raise KeyColumnError(f"table {uri}: SCD2 change columns {missing} missing; the data has {data.column_names}")
    if data.column(effective_column).null_count:
        raise KeyColumnError(f"table {uri}: effective time column '{effective_column}' has nulls")

    def result(dt, late: int, **counts) -> OperationResult:
        return OperationResult(table=uri, operation="apply_scd2", version=dt.version() if dt is not None else None,
                               seconds=round(time.perf_counter() - started, 4),
                               details={"late": late, "changes": data.num_rows}, **counts)

    def plan_and_commit() -> OperationResult:
        dt = try_open(uri)
        check_positions(uri, dt, expected)
        args = (keys, tracked, type1, effective_column, deleted_column, surrogate_key)
        columns = [surrogate_key] + keys + tracked + type1 + list(META)
        if planner is None and dt is not None and _replaceable(dt, columns):
            scope, changes = _scoped_changes(dt, data, *args)  # read once: the plan, and what a rewrite keeps
            if scope.predicate is not None:
                return replace(dt, scope, changes)
            source, late = _merge_rows(changes), changes.late
        else:
            source, late = (planner or _plan)(data, dt, *args)

        if dt is None and source.num_columns == 1:  # an empty batch: nothing to create the table from
            return result(dt, late, skipped=True, rows_skipped=data.num_rows)
        if dt is None:  # create empty first (registered configuration), so the first merge is conflict-checked
            ensure_table(uri, source.drop_columns(["__action"]).schema, spec)
            dt = try_open(uri)
            check_positions(uri, dt, expected)  # an empty table: the plan made without it stands

        target = pa.schema(dt.schema().to_arrow())
        if source.num_rows == 0:
            return unchanged(dt, late)
        source = source.cast(pa.schema([target.field(f.name) if f.name in target.names else f for f in source.schema]))
        sk = surrogate_key
        # A row carries its stored version's natural key too: matching on it as well lets delta-rs
        # skip the files whose key statistics lie outside the batch (it needs the source's
        # statistics: not streamed, which is slower when no file can be skipped)
        on = f"t.{quote(sk)} = s.{quote(sk)}"
        prune = _files_outside(dt, source, keys)
        if prune:
            on += "".join(f" AND t.{quote(k)} = s.{quote(k)}" for k in keys)
        metrics = merge_clauses(dt, source, on=on, streamed=not prune, transactions=transactions,
                                small_dictionaries=True, clauses=[
            ("matched_delete", {"predicate": "s.__action = 'delete'"}),
            ("matched_update_all", {"predicate": "s.__action = 'upsert'", "except_cols": ["__action"]}),
            ("not_matched_insert_all", {"predicate": "s.__action = 'upsert'", "except_cols": ["__action"]}),
        ])
        return result(
            dt, late, rows_inserted=metrics["num_target_rows_inserted"], rows_updated=metrics["num_target_rows_updated"],
            rows_deleted=metrics["num_target_rows_deleted"],
            files_added=metrics.get("num_target_files_added", 0),
            files_removed=metrics.get("num_target_files_removed", 0),
        )

    def unchanged(dt, late: int) -> OperationResult:
        if transactions:  # nothing to change, but the source position still moves on (same snapshot)
            commit_positions(dt, transactions)
        return result(dt, late, skipped=True, rows_skipped=data.num_rows)

    def replace(dt, scope: "_Scope", changes: "_Changes") -> OperationResult:
        if not changes.upserts.num_rows and not len(changes.deleted):
            return unchanged(dt, changes.late)
        inserted = changes.upserts.num_rows - len(changes.updated)
        metrics = replace_where(dt, _rewrite_rows(dt, scope, changes), predicate=scope.predicate,
                                transactions=transactions, rows_added=inserted)
        return result(dt, changes.late, rows_inserted=inserted, rows_updated=len(changes.updated),
                      rows_deleted=len(changes.deleted), files_added=int(metrics.get("num_added_files", 0) or 0),
                      files_removed=int(metrics.get("num_removed_files", 0) or 0))

    if expected is not None:  # the caller's plan may be stale: it re-plans, not us
        return plan_and_commit()
    return with_commit_retries(plan_and_commit, what=f"SCD2 batch into {uri}")


def _rewrite_rows(dt, scope: "_Scope", changes: "_Changes") -> pa.Table:
    """What replaces the rows of the batch's key ranges: the rows read there without the stored
    versions the new history changes or drops, plus the new and changed versions (the rows a
    merge on the surrogate key would leave in the ranges), in the table's schema."""
    target = pa.schema(dt.schema().to_arrow())
    keep = np.ones(scope.rows.num_rows, bool)
    keep[scope.hit[np.concatenate([changes.updated, changes.deleted])]] = False
    return pa.concat_tables([scope.rows.filter(pa.array(keep)).select(target.names).cast(target),
                             changes.upserts.select(target.names).cast(target)])


def _files_outside(dt, source: pa.Table, keys: list[str]) -> bool:
    """Whether some file of the table lies wholly outside the batch's range of a key column (by
    its statistics). Never with a null key in the batch: `=` would not match it."""
    if not source.num_rows or any(source.column(k).null_count for k in keys):
        return False
    try:
        files = pa.table(dt.get_add_actions(flatten=True))
        for key in keys:
            if f"min.{key}" not in files.column_names or f"max.{key}" not in files.column_names:
                continue
            bounds = pc.min_max(source.column(key))
            low, high = files.column(f"min.{key}"), files.column(f"max.{key}")
            below = pc.less(high, bounds["min"].cast(high.type))
            above = pc.greater(low, bounds["max"].cast(low.type))
            if pc.any(pc.or_(below, above)).as_py():
                return True
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return False  # statistics of a type not compared here: no pruning, the plain merge
    return False


def _hash(table: pa.Table, columns: list[str], as_text: bool = False) -> np.ndarray:
    """64-bit hash per row of `columns` as int64 (`as_text`: of their string forms, null-safe):
    pandas' `hash_pandas_object` of the columns (as text), so stored row hashes and surrogate
    keys stay what they have always been."""
    if not columns:
        return np.zeros(table.num_rows, np.int64)
    if as_text:
        return combine_hash_arrays((_text_hash(table.column(c)) for c in columns), len(columns)).view(np.int64)
    return pd.util.hash_pandas_object(table.select(columns).to_pandas(), index=False).to_numpy().view(np.int64)


def _text_hash(column: pa.ChunkedArray) -> np.ndarray:
    """pandas' hash of one column's text forms (null: "\\x00"), as `hash_pandas_object` of the
    column `.astype("string")` computes it; a string column hashes its distinct values only."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        encoded = column.fill_null("\x00").combine_chunks().dictionary_encode()
        distinct = pd.util.hash_array(encoded.dictionary.to_numpy(zero_copy_only=False))
        return distinct[encoded.indices.to_numpy(zero_copy_only=False)]
    text = pa.table({"v": column}).to_pandas()["v"].astype("string").fillna("\x00")
    return pd.util.hash_pandas_object(text, index=False).to_numpy()


def _same(a: pa.ChunkedArray | pa.Array, b: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Null-safe element-wise equality as a numpy bool array."""
    equal = pc.fill_null(pc.equal(a, b), False)
    both_null = pc.and_(pc.is_null(a), pc.is_null(b))
    return pc.or_(equal, both_null).to_numpy(zero_copy_only=False)


def _repeats(values: np.ndarray) -> np.ndarray:
    """Element i equals element i-1 (element 0: False)."""
    out = np.zeros(len(values), bool)
    out[1:] = values[1:] == values[:-1]
    return out


def _same_as_previous(table: pa.Table, columns: list[str]) -> np.ndarray:
    """Row i equals row i-1 in all `columns` (row 0: False)."""
    out = np.zeros(table.num_rows, bool)
    if table.num_rows > 1:
        out[1:] = True
        for name in columns:
            column = table.column(name)
            out[1:] &= _same(column.slice(1), column.slice(0, table.num_rows - 1))
    return out


_RANGES = 16  # key ranges a batch's keys are summed up in, for file pruning


def _key_ranges(wanted: pa.Array) -> list[tuple[Any, Any]] | None:
    """(low, high) ranges that hold every wanted key (for file-stats pruning and the rewrite's
    predicate): integer keys cut at their widest gaps into a few ranges, strings one range;
    None when no ranges apply (a null key, another type)."""
    if not len(wanted) or wanted.null_count:
        return None
    if pa.types.is_integer(wanted.type):
        values = np.sort(wanted.to_numpy())
        gaps = np.diff(values)
        holes = np.flatnonzero(gaps > 1)  # cut only where keys are missing, at the widest holes
        if len(holes) > _RANGES - 1:
            holes = holes[np.argpartition(gaps[holes], len(holes) - (_RANGES - 1))[-(_RANGES - 1):]]
        cuts = np.sort(holes) + 1
        return [(int(part[0]), int(part[-1])) for part in np.split(values, cuts)]
    if pa.types.is_string(wanted.type) or pa.types.is_large_string(wanted.type):
        bounds = pc.min_max(wanted)
        return [(bounds["min"].as_py(), bounds["max"].as_py())]
    return None


def _ranges_sql(column: str, ranges: list[tuple[Any, Any]]) -> str:
    def literal(value: Any) -> str:
        return str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"
    return " OR ".join(f"{quote(column)} BETWEEN {literal(lo)} AND {literal(hi)}" for lo, hi in ranges)


class _Scope(NamedTuple):
    """The rows of a snapshot an SCD2 batch reads: `rows` are exactly those matching
    `predicate` (every row when None), `hit` indexes the stored versions of the batch's keys."""

    predicate: str | None
    rows: pa.Table
    hit: np.ndarray


def _scope(dt, batch: pa.Table, keys: list[str]) -> _Scope:
    """The batch's keys summed up in a few ranges of the first key column: only the files whose
    statistics may hold one are read, only the rows in the ranges kept, then the stored
    versions of the batch's exact keys picked out."""
    first = keys[0]
    key_type = pa.schema(dt.schema().to_arrow()).field(first).type
    wanted = pc.unique(batch.column(first)).cast(key_type)
    if not len(wanted):  # no keys, no stored versions: nothing to read
        return _Scope(None, pa.schema(dt.schema().to_arrow()).empty_table(), np.zeros(0, np.int64))
    ranges = _key_ranges(wanted)
    if ranges is None:
        predicate, table = None, dt.to_pyarrow_table()
    else:
        predicate = _ranges_sql(first, ranges)
        field, inside = pc.field(first), None
        if not pa.types.is_integer(key_type):  # files delta-rs merged hold strings as string_view,
            field = field.cast(key_type)  # which `lo <= k <= lo` (simplified to `k == lo`) cannot compare
        for lo, hi in ranges:
            term = (field >= pa.scalar(lo, key_type)) & (field <= pa.scalar(hi, key_type))
            inside = term if inside is None else inside | term
        table = dt.to_pyarrow_dataset(file_pruning_predicate=predicate).to_table(filter=inside)
    column = table.column(first)
    if pa.types.is_integer(column.type) and not column.null_count and not wanted.null_count:
        hit = np.isin(column.to_numpy(), wanted.to_numpy())  # about 5x faster than pc.is_in
    else:
        hit = pc.is_in(column, value_set=wanted).to_numpy(zero_copy_only=False)
    hit = np.flatnonzero(hit)
    if len(keys) > 1 and len(hit):  # narrow to the exact composite keys
        candidates = table.select(keys).take(hit).append_column("__row", pa.array(hit))
        pairs = batch.select(keys).group_by(keys).aggregate([])
        pairs = pairs.cast(pa.schema([candidates.schema.field(k) for k in keys]))
        hit = np.sort(candidates.join(pairs, keys=keys, join_type="inner").column("__row").to_numpy())
    return _Scope(predicate, table, hit)


def _stored_versions(dt, batch: pa.Table, keys: list[str]) -> pa.Table:
    """Stored history of the keys present in the batch (see `_scope`)."""
    scope = _scope(dt, batch, keys)
    return scope.rows.take(scope.hit)


def _replaceable(dt, columns: list[str]) -> bool:
    """Whether a batch may rewrite its key ranges whole (replace_where) rather than merge: not
    with a change data feed (it would show every rewritten row as deleted and inserted), a
    partitioned table, or columns beyond the dimension's own (a merge keeps their values)."""
    metadata = dt.metadata()
    return (metadata.configuration.get("delta.enableChangeDataFeed") != "true" and not metadata.partition_columns
            and sorted(pa.schema(dt.schema().to_arrow()).names) == sorted(columns))


class _Changes(NamedTuple):
    """What a batch changes: `upserts` (new versions and changed stored ones, with their stored
    surrogate key), `deletes` (stored versions no longer in the history), as row indices into
    the stored versions the ones `updated` and `deleted`, and how many changes came `late`."""

    upserts: pa.Table
    deletes: pa.Table
    updated: np.ndarray
    deleted: np.ndarray
    late: int


def _scoped_changes(dt, data: pa.Table, keys, *args) -> tuple[_Scope, _Changes]:
    """The rows of the batch's key ranges (`_scope`) and the changes the batch makes to the stored
    versions among them (`_history_changes`)."""
    scope = _scope(dt, data, keys)
    return scope, _history_changes(data, scope.rows.take(scope.hit), keys, *args)


def _plan(data: pa.Table, dt, keys, tracked, type1, effective, deleted, sk) -> tuple[pa.Table, int]:
    """Merge rows (with `__action` upsert/delete) that turn the stored history into the new one."""
    stored = _stored_versions(dt, data, keys) if dt is not None else None
    changes = _history_changes(data, stored, keys, tracked, type1, effective, deleted, sk)
    return _merge_rows(changes), changes.late


def _merge_rows(changes: _Changes) -> pa.Table:
    if not changes.upserts.num_columns:  # nothing stored, nothing in the batch
        return changes.upserts.append_column("__action", pa.array([], pa.string()))
    return pa.concat_tables([
        changes.upserts.append_column("__action", pa.array(["upsert"] * changes.upserts.num_rows, pa.string())),
        changes.deletes.append_column("__action", pa.array(["delete"] * changes.deletes.num_rows, pa.string())),
    ])


def _history_changes(data: pa.Table, stored: pa.Table | None, keys, tracked, type1, effective, deleted,
                     sk) -> _Changes:
    """The changes that turn the stored history (`stored`: the batch's keys' stored versions)
    into the new one.

    Events (stored versions, stored deletes re-expressed at their time, the batch's changes)
    are sorted once on their keys and times; the history is decided on integer arrays (tracked
    state as its 64-bit row hash) and its values are taken once, at the end, from the rows
    they come from."""
    values = keys + tracked + type1
    n = data.num_rows
    incoming = data.select(values).append_column("valid_from", data.column(effective))
    if stored is not None:
        incoming = incoming.cast(pa.schema([stored.schema.field(c) for c in incoming.column_names]))
    m = stored.num_rows if stored is not None else 0
    flags = (pc.fill_null(data.column(deleted), False).to_numpy(zero_copy_only=False) if deleted
             else np.zeros(n, bool))
    payload = incoming  # every row whose values can end up in the history: stored versions, then the batch
    # per event: when, sort order (stored first at equal times), row in payload, stored SK, delete, tracked hash
    when, order, seq, row = [incoming.column("valid_from")], [np.ones(n, np.int8)], [np.arange(n)], [m + np.arange(n)]
    key_parts, has_sk, sks = [incoming.select(keys)], [np.zeros(n, bool)], [np.zeros(n, np.int64)]
    delete, state = [flags], [_hash(incoming, tracked, as_text=True)]
    if m:
        payload = pa.concat_tables([stored.select(incoming.column_names), incoming])
        hashes = stored.column("row_hash")
        stored_state = (_hash(stored, tracked, as_text=True) if hashes.null_count
                        else hashes.cast(pa.int64()).to_numpy())
        closed = np.flatnonzero(pc.fill_null(stored.column("is_deleted"), False).to_numpy(zero_copy_only=False))
        d = len(closed)  # a version closed by a delete is re-expressed as a delete event at its valid_to
        when[:0] = [stored.column("valid_from"), stored.column("valid_to").take(closed)]
        order[:0], seq[:0], row[:0] = [np.zeros(m + d, np.int8)], [np.arange(m), closed], [np.arange(m), closed]
        key_parts[:0] = [stored.select(keys), stored.select(keys).take(closed)]
        has_sk[:0] = [np.ones(m, bool), np.zeros(d, bool)]
        sks[:0] = [pc.fill_null(stored.column(sk).cast(pa.int64()), 0).to_numpy(), np.zeros(d, np.int64)]
        delete[:0], state[:0] = [np.zeros(m, bool), np.ones(d, bool)], [stored_state, np.zeros(d, np.int64)]
    order, seq, row = np.concatenate(order), np.concatenate(seq), np.concatenate(row)
    has_sk, sks, delete, state = map(np.concatenate, (has_sk, sks, delete, state))
    events = pa.concat_tables(key_parts).append_column("valid_from", pa.chunked_array(
        [c for part in when for c in part.chunks] if when else [], type=incoming.schema.field("valid_from").type))
    total = events.num_rows
    if not total:
        empty = incoming.select([])
        return _Changes(empty, empty, np.zeros(0, np.int64), np.zeros(0, np.int64), 0)
    ordering = events.append_column("__order", pa.array(order)).append_column("__seq", pa.array(seq))
    perm = pc.sort_indices(ordering, [(c, "ascending") for c in keys + ["valid_from", "__order", "__seq"]]).to_numpy()
    events = events.take(perm)
    order, seq, row, has_sk, sks, delete, state = (a[perm] for a in (order, seq, row, has_sk, sks, delete, state))

    same_key = _same_as_previous(events, keys)
    group = np.cumsum(~same_key)  # the key of each sorted event, as a number
    position = np.arange(total)
    starts = np.flatnonzero(~same_key)
    from_store = order == 0
    # late: a change with a stored version of its key after it (same time sorts stored first)
    last_stored = np.repeat(np.maximum.reduceat(np.where(from_store, position, -1), starts),
                            np.diff(np.append(starts, total)))
    late = int(np.count_nonzero(~from_store & (last_stored > position)))

    # one event per (key, valid_from): the newest change wins, a stored version keeps its surrogate key
    same_time = same_key & _same_as_previous(events, ["valid_from"])
    last_of_run = np.ones(total, bool)
    last_of_run[:-1] = ~same_time[1:]
    run_start = np.maximum.accumulate(np.where(same_time, 0, position))
    keep = np.flatnonzero(last_of_run)
    first = run_start[keep]
    has_sk, carried, origin = has_sk[first], sks[first], seq[first]
    at, row, delete, state = keep, row[keep], delete[keep], state[keep]  # at: the event's place in `events`
    same_key = _repeats(group[at])

    # type 1: the newest non-delete value applies to every version of the key
    starts = np.flatnonzero(~same_key)
    candidate = np.where(delete, -1, np.arange(len(delete)))
    newest = np.repeat(np.maximum.reduceat(candidate, starts), np.diff(np.append(starts, len(delete))))
    type1_row = row[np.maximum(newest, 0)]  # a key without a non-delete event has no live version

    # a change that repeats the state before it is not a new version (nor is a second delete)
    repeated = same_key & (np.roll(delete, 1) == delete)
    if tracked:
        repeated &= delete | (np.roll(state, 1) == state)
    survivors = np.flatnonzero(~repeated)
    at, row, delete, state, type1_row = (at[survivors], row[survivors], delete[survivors], state[survivors],
                                         type1_row[survivors])
    has_sk, carried, origin = has_sk[survivors], carried[survivors], origin[survivors]

    count = len(at)
    next_same = np.zeros(count, bool)
    next_same[:-1] = _repeats(group[at])[1:]
    valid_from = events.column("valid_from").take(at)
    following = pc.take(valid_from, pa.array(np.minimum(np.arange(1, count + 1), count - 1)))
    valid_to = pc.if_else(pa.array(next_same), following, pa.nulls(count, valid_from.type))
    closed_by_delete = np.zeros(count, bool)
    closed_by_delete[:-1] = delete[1:]
    closed_by_delete &= next_same
    alive = np.flatnonzero(~delete)
    has_sk, carried, origin, row, type1_row = has_sk[alive], carried[alive], origin[alive], row[alive], type1_row[alive]
    valid_to, state = valid_to.take(alive), state[alive]
    is_current, is_deleted = ~next_same[alive], closed_by_delete[alive]
    # the history has one row per alive event; only the rows that are new or differ from the
    # stored version whose surrogate key they carry are built and written (keys and valid_from
    # are equal by construction, tracked values are compared by their row hash)
    changed = ~has_sk
    updated = gone = np.zeros(0, np.int64)
    if stored is not None:
        pairs = np.flatnonzero(has_sk)
        old = origin[pairs]
        differs = _differs(valid_to.take(pairs), stored.column("valid_to").take(old))
        for name, new in (("is_current", is_current), ("is_deleted", is_deleted), ("row_hash", state)):
            differs |= _differs(new[pairs], stored.column(name).take(old))
        for name in type1:
            differs |= _differs(payload.column(name).take(type1_row[pairs]), stored.column(name).take(old))
        changed[pairs] = differs
        updated = old[differs]
        kept = np.zeros(m, bool)
        kept[old] = True
        gone = np.flatnonzero(~kept)  # stored versions no history row carries
    pick = np.flatnonzero(changed)
    upserts = payload.select(keys + tracked + ["valid_from"]).take(row[pick])
    for name in type1:
        upserts = upserts.append_column(name, payload.column(name).take(type1_row[pick]))
    upserts = upserts.append_column("valid_to", valid_to.take(pick)).append_column(
        "is_current", pa.array(is_current[pick])).append_column("is_deleted", pa.array(is_deleted[pick])).append_column(
        "row_hash", pa.array(state[pick]))
    sks, fresh = carried[pick], np.flatnonzero(~has_sk[pick])
    sks[fresh] = _hash(upserts.select(keys + ["valid_from"]).take(fresh), keys + ["valid_from"])
    upserts = upserts.add_column(0, sk, pa.array(sks)).select([sk] + values + list(META))
    deletes = (upserts.slice(0, 0) if stored is None
               else stored.select(upserts.column_names).take(gone).cast(upserts.schema))
    return _Changes(upserts, deletes, updated, gone, late)


def _differs(new: "np.ndarray | pa.ChunkedArray | pa.Array", old: pa.ChunkedArray) -> np.ndarray:
    """new[i] differs from old[i] (null-safe: null equals null only), as a numpy bool array."""
    if isinstance(new, np.ndarray):
        if not old.null_count and (pa.types.is_integer(old.type) or pa.types.is_boolean(old.type)):
            return old.to_numpy() != new
        new = pa.array(new)
    return ~_same(new, old)


def plan_rewrite(data: pa.Table, dt, keys, tracked, type1, effective, deleted,
                 surrogate_key) -> tuple[str | None, pa.Table, int]:
    """The predicate of the key ranges `apply_scd2` would rewrite in the snapshot `dt`, the rows
    it would write there and how many changes arrived late (predicate None: it would merge):
    for benchmarks that time the bare write against this plan."""
    scope, changes = _scoped_changes(dt, data, list(keys), tracked, type1, effective, deleted, surrogate_key)
    return scope.predicate, _rewrite_rows(dt, scope, changes), changes.late


def plan_merge(data: pa.Table, dt, keys, tracked, type1, effective, deleted, surrogate_key) -> tuple[pa.Table, int]:
    """The rows `apply_scd2` would merge into the snapshot `dt` (with their `__action`) and how
    many changes arrived late: for benchmarks that time the bare merge against this plan."""
    return _plan(data, dt, keys, tracked, type1, effective, deleted, surrogate_key)
