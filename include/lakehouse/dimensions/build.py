"""Type 2 gold dimensions from silver's change feed (the dimensions stage).

`build_dimension` reads silver's change data feed since the last batch (the silver version
recorded in gold's own Delta log, in the same commit) and applies it with
`dimensions.scd2.apply_scd2`. A version is closed at the source time of the change that ended
it: the next version's effective column, or for a delete the delete's own source time (never
the time silver happened to apply it, which lags). One plan per run, re-made from scratch on
a commit conflict, so racing builds apply every change once.
Owns the dimension batch; never writes Delta itself (tables.delta and dimensions.scd2 do),
never builds a table path and never formats reports.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from include.lakehouse.cdc.apply import APPLIED_SEQUENCE, tombstones
from include.lakehouse.cdc.flow import UTC_MICROS, cdc_tables, next_batch
from include.lakehouse.config import SOURCES_FILE, load_sources
from include.lakehouse.errors import LakehouseError
from include.lakehouse.spark.changes import apply_scd2_configured
from include.lakehouse.tables.delta import with_commit_retries
from include.lakehouse.tables.registry import get_table


def dimensions() -> dict[str, dict[str, Any]]:
    return load_sources().get("dimensions") or {}


def build_dimension(name: str, *, spark: Any = None) -> dict[str, Any]:
    """Apply silver's changes since the last batch to `gold/<name>` as SCD type 2 (on the
    table's configured engine, spark/changes.py; on Spark when a `spark` session is given)."""
    if name not in dimensions():
        raise LakehouseError(f"unknown dimension '{name}'; configure it under dimensions: in {SOURCES_FILE}")
    dim = dimensions()[name]
    source_spec = cdc_tables()[dim["source"]]
    gold = get_table(f"gold/{name}")
    position = f"scd2.silver/{dim['source']}"
    keys, tracked, type1 = source_spec["keys"], dim["tracked"], dim.get("type1", [])

    def plan_and_apply() -> dict[str, Any]:
        batch = next_batch(f"silver/{dim['source']}", gold.uri, position)
        if isinstance(batch, str):
            return {"dimension": name, "skipped": True, "detail": batch}
        silver, done, current = batch.source, batch.done, batch.current
        kinds = pa.array(["insert", "update_postimage", "delete"])
        feed = batch.feed.filter(pc.is_in(batch.feed.column("_change_type"), kinds))
        feed = feed.take(pc.sort_indices(feed, [("_commit_version", "ascending")]))  # stable: source order kept
        deleted = pc.equal(feed.column("_change_type"), "delete")
        changed_at = _change_times(feed, deleted, keys, dim["effective"], silver.table_uri)
        changes = feed.select(keys + tracked + type1).append_column("changed_at", changed_at).append_column(
            "_deleted", deleted)
        result = apply_scd2_configured(gold, changes, spark=spark, keys=keys, tracked=tracked, type1=type1,
                                       effective_column="changed_at", deleted_column="_deleted",
                                       surrogate_key=dim["surrogate_key"], transactions={position: current},
                                       expected={position: done})
        return {**result.to_dict(), "dimension": name, "silver_version": current,
                "late": result.details.get("late", 0)}  # versions inserted/updated come as rows_*

    return with_commit_retries(plan_and_apply, what=f"SCD2 build of gold/{name}")


def _column_or_nulls(feed: pa.Table, name: str) -> pa.ChunkedArray | pa.Array:
    if name in feed.column_names:
        return feed.column(name).cast(UTC_MICROS)
    return pa.nulls(feed.num_rows, UTC_MICROS)


def _change_times(feed: pa.Table, deleted: pa.ChunkedArray, keys: list[str], effective: str,
                  silver_uri: str) -> pa.Array:
    """When each silver change happened in the source.

    An insert/update: its effective column (else its `_source_ts`, else the commit time).
    A delete: the source time of the first delete event after the deleted row's state (its
    tombstone: silver's feed only shows the row as it was), never before the version it
    closes began (a millisecond source clock against a microsecond column: at equal times
    the later change wins); the silver commit time only when no tombstone says."""
    commit = feed.column("_commit_timestamp").cast(UTC_MICROS)
    state_time = pc.coalesce(_column_or_nulls(feed, effective), _column_or_nulls(feed, "_source_ts"), commit)
    if not pc.any(deleted).as_py():
        return state_time.combine_chunks() if isinstance(state_time, pa.ChunkedArray) else state_time
    rows = np.flatnonzero(deleted.to_numpy(zero_copy_only=False))
    deletes = feed.take(rows).select(keys + [APPLIED_SEQUENCE]).append_column("__row", pa.array(rows, pa.int64()))
    source_ts = pa.nulls(len(rows), UTC_MICROS).to_pylist()
    stones = tombstones(silver_uri)
    if stones is not None and "_source_ts" in stones.column_names:
        stones = stones.select(keys + [APPLIED_SEQUENCE, "_source_ts"]).rename_columns(
            keys + ["__stone_seq", "__stone_ts"])
        stones = stones.cast(pa.schema([deletes.schema.field(k) for k in keys]
                                       + [pa.field("__stone_seq", pa.int64()), pa.field("__stone_ts", UTC_MICROS)]))
        after = deletes.join(stones, keys=keys, join_type="inner")
        after = after.filter(pc.greater(after.column("__stone_seq"), after.column(APPLIED_SEQUENCE)))
        after = after.sort_by([("__row", "ascending"), ("__stone_seq", "ascending")])
        hit_rows, first = np.unique(after.column("__row").to_numpy(), return_index=True)
        position = {int(r): i for i, r in enumerate(rows)}
        for row, ts in zip(hit_rows, after.column("__stone_ts").take(pa.array(first)).to_pylist()):
            source_ts[position[int(row)]] = ts
    times = state_time.to_pylist()
    for i, row in enumerate(rows):
        began = times[row] if effective in feed.column_names and feed.column(effective)[int(row)].is_valid else None
        when = source_ts[i] or commit[int(row)].as_py()
        if began is not None and when < began:  # at the same time, the later change (the delete) wins
            when = began
        times[row] = when
    return pa.array(times, UTC_MICROS)
