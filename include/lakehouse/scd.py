"""Slowly changing dimensions: type 2 history with type 1 corrections, in one merge per batch.

For every key touched by a batch, the key's history is recomputed from its stored versions
plus the new changes, ordered by effective time; only rows that differ are merged back.
That makes late-arriving changes land at their right place (splitting the interval they
fall into), makes a rerun of the same batch a no-op, and keeps surrogate keys stable:
`<sk>` is a hash of the natural key and `valid_from`.

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


def _hash(frame: pd.DataFrame) -> np.ndarray:
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


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
    `deleted_column` (true: the source row was deleted at that time).
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

    incoming = data.select(needed).to_pandas()
    incoming = incoming.rename(columns={effective_column: "valid_from"})
    incoming["__delete"] = incoming.pop(deleted_column).fillna(False).astype(bool) if deleted_column else False
    incoming["__order"] = 1  # on equal (key, valid_from) a change replaces what is stored

    dt = try_open(uri)
    stored = _stored_versions(dt, data.select(keys), keys) if dt is not None else pd.DataFrame()
    late = 0
    if not stored.empty:
        latest = stored.groupby(keys, sort=False)["valid_from"].max().rename("__latest")
        probe = incoming.join(latest, on=keys)
        late = int((probe["valid_from"] < probe["__latest"]).sum())
    history = _rebuild(incoming, stored, keys, tracked, type1, surrogate_key)

    if dt is None:
        write_deltalake(uri, pa.Table.from_pandas(history, preserve_index=False), storage_options=storage_options(),
                        commit_properties=commit_properties(transactions))
        dt = try_open(uri)
        return OperationResult(table=uri, operation="apply_scd2", version=dt.version(),
                               rows_inserted=len(history), seconds=round(time.perf_counter() - started, 4),
                               details={"late": late, "changes": data.num_rows})

    inserts, updates, deletes = _diff(stored, history, surrogate_key)
    if inserts.empty and updates.empty and deletes.empty:
        if transactions:  # nothing to change, but the source position still moves on
            write_deltalake(uri, pa.Table.from_pandas(history.iloc[0:0], preserve_index=False).cast(
                pa.schema(dt.schema().to_arrow())), mode="append", commit_properties=commit_properties(transactions),
                storage_options=storage_options())
        return OperationResult(table=uri, operation="apply_scd2", version=dt.version(), skipped=True,
                               rows_skipped=data.num_rows, seconds=round(time.perf_counter() - started, 4),
                               details={"late": late, "changes": data.num_rows})
    source = pd.concat(
        [inserts.assign(__action="upsert"), updates.assign(__action="upsert"), deletes.assign(__action="delete")],
        ignore_index=True,
    )
    source_table = pa.Table.from_pandas(source, preserve_index=False)
    source_table = source_table.cast(_source_schema(dt, source_table))
    sk = surrogate_key
    metrics = (
        dt.merge(source_table, predicate=f"t.{sk} = s.{sk}", source_alias="s", target_alias="t",
                 commit_properties=commit_properties(transactions))
        .when_matched_delete(predicate="s.__action = 'delete'")
        .when_matched_update_all(predicate="s.__action = 'upsert'", except_cols=["__action"])
        .when_not_matched_insert_all(predicate="s.__action = 'upsert'", except_cols=["__action"])
        .execute()
    )
    dt.update_incremental()
    return OperationResult(
        table=uri, operation="apply_scd2", version=dt.version(),
        rows_inserted=metrics["num_target_rows_inserted"], rows_updated=metrics["num_target_rows_updated"],
        rows_deleted=metrics["num_target_rows_deleted"],
        files_added=metrics.get("num_target_files_added", 0), files_removed=metrics.get("num_target_files_removed", 0),
        seconds=round(time.perf_counter() - started, 4),
        details={"late": late, "changes": data.num_rows},
    )


def _stored_versions(dt, batch_keys: pa.Table, keys: list[str]) -> pd.DataFrame:
    """Stored history of the keys present in the batch."""
    table = dt.to_pyarrow_table()  # one scan; is_in in memory beats a filtered dataset scan here
    first = keys[0]
    wanted = pc.unique(batch_keys.column(first)).cast(table.schema.field(first).type)
    frame = table.filter(pc.is_in(table.column(first), value_set=wanted)).to_pandas()
    if len(keys) > 1 and not frame.empty:  # narrow to the exact composite keys
        frame = frame.merge(batch_keys.to_pandas().drop_duplicates(), on=keys, how="inner")
    return frame


def _rebuild(incoming: pd.DataFrame, stored: pd.DataFrame, keys, tracked, type1, sk: str) -> pd.DataFrame:
    """Recompute the full history of every key in `incoming` from stored versions + changes."""
    parts = [incoming]
    if not stored.empty:
        versions = stored[keys + tracked + type1 + ["valid_from"]].assign(__delete=False, __order=0)
        # a version closed by a delete is re-expressed as a delete event at its valid_to
        closed = stored[stored["is_deleted"].fillna(False).astype(bool)]
        deletes = closed[keys + tracked + type1].assign(valid_from=closed["valid_to"], __delete=True, __order=0)
        parts = [versions, deletes, incoming]
    events = pd.concat(parts, ignore_index=True)
    events = events.sort_values(keys + ["valid_from", "__order"], kind="stable")
    events = events.drop_duplicates(subset=keys + ["valid_from"], keep="last")

    group = events.groupby(keys, sort=False)
    if type1:  # type 1: the newest non-delete value applies to every version of the key
        newest = events[~events["__delete"]].groupby(keys, sort=False)[type1].last()
        events = events.drop(columns=type1).join(newest, on=keys)
    state = _hash(events[tracked].astype("string").fillna("\x00")) if tracked else np.zeros(len(events), np.uint64)
    events["row_hash"] = state.view(np.int64)
    marker = np.where(events["__delete"].to_numpy(), np.uint64(0), state)
    same_key = np.ones(len(events), bool)
    if len(events):
        key_frame = events[keys]
        same_key = (key_frame == key_frame.shift(1)).all(axis=1).to_numpy()
    repeated = np.zeros(len(events), bool)
    repeated[1:] = marker[1:] == marker[:-1]
    repeated &= same_key
    events = events[~repeated]  # no change in tracked columns: not a new version

    group = events.groupby(keys, sort=False)
    events["valid_to"] = group["valid_from"].shift(-1)
    events["is_deleted"] = group["__delete"].shift(-1, fill_value=False).astype(bool)
    history = events[~events["__delete"]].copy()
    history["is_current"] = history["valid_to"].isna()
    history[sk] = _hash(history[keys + ["valid_from"]]).view(np.int64)
    columns = [sk] + keys + tracked + type1 + list(META)
    return history[columns].reset_index(drop=True)


def _diff(stored: pd.DataFrame, history: pd.DataFrame, sk: str):
    """Rows to insert, rows to update (any column differs) and rows to delete, by surrogate key."""
    if stored.empty:
        return history, history.iloc[0:0], history.iloc[0:0]
    stored = stored[history.columns]
    in_old = history[sk].isin(stored[sk]).to_numpy()
    inserts = history[~in_old]
    deletes = stored[~stored[sk].isin(history[sk]).to_numpy()]
    # same surrogate key = same natural key and valid_from; anything else may have changed
    mutable = [c for c in history.columns if c not in (sk, "valid_from")]
    pair = history[in_old].merge(stored[[sk] + mutable], on=sk, suffixes=("", "__old"))
    changed = np.zeros(len(pair), bool)
    for column in mutable:
        new, old = pair[column], pair[f"{column}__old"]
        changed |= ~((new == old) | (new.isna() & old.isna())).to_numpy()
    updates = pair.loc[changed, list(history.columns)]
    return inserts, updates, deletes


def _source_schema(dt, source: pa.Table) -> pa.Schema:
    """The merge source in the table's types, plus the __action column."""
    target = pa.schema(dt.schema().to_arrow())
    return pa.schema([target.field(f.name) if f.name in target.names else f for f in source.schema])
