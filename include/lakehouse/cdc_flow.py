"""From Debezium topics in bronze to current-state silver tables and type 2 gold dimensions.

`apply_bronze_changes` reads only what bronze received since the last batch (its change
data feed, from the bronze version recorded in silver's own Delta log by the previous
merge, in the same commit), turns envelopes into typed flat changes (`debezium`) and
applies them with `cdc.apply_cdc`. The position moves on with every batch, also when
nothing in it changed silver. A message that cannot be applied (not JSON, no key, unknown
op, no sequence, a value that does not fit its column) goes to `quarantine/cdc.<topic>`
with the reason, once however often its bronze version is re-read; the good ones apply.
Kafka tombstones are skipped (the delete before them carries the change). Silver rows keep
`_source_ts` (the source commit time, Debezium's source.ts_ms) and every delete is kept
with its source time beside silver (cdc tombstones).

`build_dimension` does the same one layer up: silver's change feed -> `scd.apply_scd2`. A
version is closed at the source time of the change that ended it: the next version's
effective column, or for a delete the delete's own source time (never the time silver
happened to apply it, which lags).

Each run is one plan (read the position, read the feed, merge) that is checked and
committed on one snapshot and re-made from scratch on a commit conflict: two runs at
once, or a run beside a compaction, apply every change exactly once.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from include.lakehouse.cdc import APPLIED_SEQUENCE, tombstones
from include.lakehouse.config import SOURCES_FILE, get_table, load_sources, table_ref
from include.lakehouse.debezium import parse_envelope, typed_changes
from include.lakehouse.delta import append, try_open, with_commit_retries
from include.lakehouse.delta import position as delta_position
from include.lakehouse.errors import LakehouseError
from include.lakehouse.maintenance import read_changes_since
from include.lakehouse.spark.changes import apply_cdc_configured, apply_scd2_configured

UTC_MICROS = pa.timestamp("us", tz="UTC")
QUARANTINE_SCHEMA = pa.schema([("_raw", pa.string()), ("_reason", pa.string()), ("partition", pa.int64()),
                               ("offset", pa.int64()), ("_bronze_version", pa.int64())])


def cdc_tables() -> dict[str, dict[str, Any]]:
    return load_sources().get("cdc") or {}


def dimensions() -> dict[str, dict[str, Any]]:
    return load_sources().get("dimensions") or {}


def _read_feed(dt, done: int | None, current: int) -> pa.Table:
    """Rows changed after version `done` up to `current`, as change data feed rows.

    The first batch (done is None) reads the whole feed from version 0, full history
    included; a table created before its change feed was switched on is read as a
    snapshot of inserts instead, and its feed is switched on for every later batch.
    """
    try:
        return read_changes_since(dt.table_uri, done, current)
    except Exception:  # feed off (LakehouseError) or switched on after version 0 (DeltaError)
        if done is not None:
            raise
    snapshot = pa.table(dt.to_pyarrow_table())
    feed = snapshot.append_column("_change_type", pa.array(["insert"] * snapshot.num_rows, pa.string()))
    feed = feed.append_column("_commit_timestamp", pa.array(
        [datetime.now(timezone.utc)] * snapshot.num_rows, UTC_MICROS))
    feed = feed.append_column("_commit_version", pa.array([dt.version()] * snapshot.num_rows, pa.int64()))
    if dt.metadata().configuration.get("delta.enableChangeDataFeed") != "true":
        dt.alter.set_table_properties({"delta.enableChangeDataFeed": "true"})
    return feed


def apply_bronze_changes(table: str, *, batch_id: str | None = None, spark: Any = None) -> dict[str, Any]:
    """Apply what `bronze/<topic>` received since the last batch to `silver/<table>` (on the
    table's configured engine, spark/changes.py; on Spark when a `spark` session is given)."""
    started = time.perf_counter()
    if table not in cdc_tables():
        raise LakehouseError(f"unknown CDC table '{table}'; configure it under cdc: in {SOURCES_FILE}")
    spec = cdc_tables()[table]
    topic = spec["topic"]
    silver = get_table(f"silver/{table}")
    position = f"cdc_apply.bronze/{topic}"

    def plan_and_apply() -> dict[str, Any]:
        bronze = try_open(f"bronze/{topic}")
        if bronze is None:
            return {"table": table, "skipped": True, "detail": f"bronze/{topic} not there yet", "counts": {}}
        target = try_open(silver.uri)
        done = delta_position(target, position) if target is not None else None
        current = bronze.version()
        if done is not None and done >= current:
            return {"table": table, "skipped": True, "detail": f"bronze/{topic} v{current} already applied",
                    "counts": {}}
        feed = _read_feed(bronze, done, current)
        feed = feed.filter(pc.equal(feed.column("_change_type"), "insert"))
        parsed, sources, bad, kafka_tombstones = [], [], [], 0
        for record in feed.to_pylist():
            if record["tombstone"] or record["payload"] is None:
                kafka_tombstones += 1
                continue
            try:
                parsed.append(parse_envelope(record["payload"], spec))
                sources.append(record)
            except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
                bad.append(_quarantine_row(record, str(exc)))
        table_types = {f.name: f.type for f in pa.schema(target.schema().to_arrow())} if target is not None else {}
        changes, wrong = typed_changes(parsed, spec, table_types)
        bad += [_quarantine_row(sources[index], reason) for index, reason in wrong]
        _quarantine(topic, bad, current)
        summary = {"table": table, "bronze_version": current, "changes": changes.num_rows,
                   "tombstones": kafka_tombstones, "quarantined": len(bad), "counts": {"quarantined": len(bad)}}
        if not changes.num_rows:
            if target is not None:  # nothing to apply, but the next run starts after these messages
                append(silver, pa.schema(target.schema().to_arrow()).empty_table(), transactions={position: current},
                       expected={position: done})
            return {**summary, "skipped": True, "detail": "no applicable changes",
                    "seconds": round(time.perf_counter() - started, 3)}
        result = apply_cdc_configured(silver, changes, spark=spark, keys=spec["keys"], sequence_column="_lsn", op_column="_op",
                           source_time_column="_source_ts", transactions={position: current},
                           expected={position: done})
        return {**result.to_dict(), **summary,  # inserted/updated/deleted come as rows_*
                "seconds": round(time.perf_counter() - started, 3)}

    return with_commit_retries(plan_and_apply, what=f"CDC apply of bronze/{topic} to silver/{table}")


def _quarantine_row(record: dict[str, Any], reason: str) -> dict[str, Any]:
    return {"_raw": record["payload"], "_reason": reason, "partition": record["partition"],
            "offset": record["offset"], "_bronze_version": record["_commit_version"]}


def _quarantine(topic: str, bad: list[dict[str, Any]], current: int) -> None:
    """Record bad messages once each: the quarantine table remembers up to which bronze version
    it holds them (an app transaction), so re-reading those versions adds nothing."""
    if not bad:
        return
    uri = table_ref(f"quarantine/cdc.{topic}")
    held = f"cdc_quarantine.bronze/{topic}"
    existing = try_open(uri)
    done = delta_position(existing, held) if existing is not None else None
    fresh = [row for row in bad if done is None or row["_bronze_version"] > done]
    if fresh:
        append(uri, pa.Table.from_pylist(fresh, schema=QUARANTINE_SCHEMA), transactions={held: current},
               expected={held: done})


def build_dimension(name: str, *, spark: Any = None) -> dict[str, Any]:
    """Apply silver's changes since the last batch to `gold/<name>` as SCD type 2 (engine as
    for apply_bronze_changes)."""
    if name not in dimensions():
        raise LakehouseError(f"unknown dimension '{name}'; configure it under dimensions: in {SOURCES_FILE}")
    dim = dimensions()[name]
    source_spec = cdc_tables()[dim["source"]]
    gold = get_table(f"gold/{name}")
    position = f"scd2.silver/{dim['source']}"
    keys, tracked, type1 = source_spec["keys"], dim["tracked"], dim.get("type1", [])

    def plan_and_apply() -> dict[str, Any]:
        silver = try_open(f"silver/{dim['source']}")
        if silver is None:
            return {"dimension": name, "skipped": True, "detail": f"silver/{dim['source']} not there yet",
                    "counts": {}}
        target = try_open(gold.uri)
        done = delta_position(target, position) if target is not None else None
        current = silver.version()
        if done is not None and done >= current:
            return {"dimension": name, "skipped": True, "detail": f"silver v{current} already applied", "counts": {}}
        feed = _read_feed(silver, done, current)
        feed = feed.filter(pc.is_in(feed.column("_change_type"), pa.array(["insert", "update_postimage", "delete"])))
        feed = feed.take(pc.sort_indices(feed, [("_commit_version", "ascending")]))  # stable: source order kept
        deleted = pc.equal(feed.column("_change_type"), "delete")
        changed_at = _change_times(feed, deleted, keys, dim["effective"], silver.table_uri)
        changes = feed.select(keys + tracked + type1).append_column("changed_at", changed_at).append_column(
            "_deleted", deleted)
        result = apply_scd2_configured(gold, changes, spark=spark, keys=keys, tracked=tracked, type1=type1, effective_column="changed_at",
                            deleted_column="_deleted", surrogate_key=dim["surrogate_key"],
                            transactions={position: current}, expected={position: done})
        return {**result.to_dict(), "silver_version": current,
                "counts": {"late": result.details.get("late", 0)}}  # versions inserted/updated come as rows_*

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
