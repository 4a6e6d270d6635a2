"""From Debezium topics in bronze to current-state silver tables (the CDC stage).

`apply_bronze_changes` reads only what bronze received since the last batch (its change
data feed, from the bronze version recorded in silver's own Delta log by the previous
merge, in the same commit), turns envelopes into typed flat changes (`cdc.debezium`) and
applies them with `cdc.apply.apply_cdc`. The position moves on with every batch, also when
nothing in it changed silver. A message that cannot be applied (not JSON, no key, unknown
op, no sequence, a value that does not fit its column) goes to `quarantine/cdc.<topic>`
with the reason, once however often its bronze version is re-read; the good ones apply.
Kafka tombstones are skipped (the delete before them carries the change). Silver rows keep
`_source_ts` (the source commit time, Debezium's source.ts_ms) and every delete is kept
with its source time beside silver (cdc tombstones).

Each run is one plan (read the position, read the feed, merge) that is checked and
committed on one snapshot and re-made from scratch on a commit conflict: two runs at
once, or a run beside a compaction, apply every change exactly once.
Owns the CDC batch (position, feed, quarantine); never writes Delta itself (tables.delta and
cdc.apply do), never builds a table path and never formats reports (the Airflow side does).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from include.lakehouse.cdc.apply import apply_cdc
from include.lakehouse.cdc.debezium import parse_envelope, typed_changes
from include.lakehouse.config import SOURCES_FILE, load_sources
from include.lakehouse.errors import LakehouseError
from include.lakehouse.maintenance.operations import read_changes_since
from include.lakehouse.tables.delta import append, enable_change_feed, try_open, with_commit_retries
from include.lakehouse.tables.delta import position as delta_position
from include.lakehouse.tables.registry import get_table, table_ref

UTC_MICROS = pa.timestamp("us", tz="UTC")
QUARANTINE_SCHEMA = pa.schema([("_raw", pa.string()), ("_reason", pa.string()), ("partition", pa.int64()),
                               ("offset", pa.int64()), ("_bronze_version", pa.int64())])


def cdc_tables() -> dict[str, dict[str, Any]]:
    return load_sources().get("cdc") or {}


def read_feed(dt, done: int | None, current: int) -> pa.Table:
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
    enable_change_feed(dt)
    return feed


@dataclass(frozen=True)
class Batch:
    """What a consumer has not consumed yet of a source table's change feed."""

    source: DeltaTable
    target: DeltaTable | None  # None before the consumer's first write
    done: int | None  # the source version the target recorded last (its position), None at first
    current: int  # the source version this batch reads up to
    feed: pa.Table  # change data feed rows after `done` up to `current`


def next_batch(source: str, target_uri: str, position: str) -> Batch | str:
    """The part of `source`'s change feed the table at `target_uri` has not consumed, by the
    position (app transaction `position`) it records with each write; else why there is none."""
    dt = try_open(source)
    if dt is None:
        return f"{source} not there yet"
    target = try_open(target_uri)
    done = delta_position(target, position) if target is not None else None
    current = dt.version()
    if done is not None and done >= current:
        return f"{source} v{current} already applied"
    return Batch(dt, target, done, current, read_feed(dt, done, current))


def apply_bronze_changes(table: str, *, batch_id: str | None = None) -> dict[str, Any]:
    """Apply what `bronze/<topic>` received since the last batch to `silver/<table>`."""
    started = time.perf_counter()
    if table not in cdc_tables():
        raise LakehouseError(f"unknown CDC table '{table}'; configure it under cdc: in {SOURCES_FILE}")
    spec = cdc_tables()[table]
    topic = spec["topic"]
    silver = get_table(f"silver/{table}")
    position = f"cdc_apply.bronze/{topic}"

    def plan_and_apply() -> dict[str, Any]:
        batch = next_batch(f"bronze/{topic}", silver.uri, position)
        if isinstance(batch, str):
            return {"table": table, "skipped": True, "detail": batch}
        target, done, current = batch.target, batch.done, batch.current
        feed = batch.feed.filter(pc.equal(batch.feed.column("_change_type"), "insert"))
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
                   "tombstones": kafka_tombstones, "quarantined": len(bad)}
        if not changes.num_rows:
            if target is not None:  # nothing to apply, but the next run starts after these messages
                append(silver, pa.schema(target.schema().to_arrow()).empty_table(), transactions={position: current},
                       expected={position: done})
            return {**summary, "skipped": True, "detail": "no applicable changes",
                    "seconds": round(time.perf_counter() - started, 3)}
        result = apply_cdc(silver, changes, keys=spec["keys"], sequence_column="_lsn", op_column="_op",
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
