"""From Debezium topics in bronze to current-state silver tables and type 2 gold dimensions.

`apply_bronze_changes` reads only what bronze received since the last batch (its change
data feed, from the bronze version recorded in silver's own Delta log by the previous
merge, in the same commit), turns envelopes into flat changes and applies them with
`cdc.apply_cdc`. Both Debezium shapes are understood: the envelope (`before`, `after`,
`op`, `source.lsn`, `source.ts_ms`) and the unwrapped form of ExtractNewRecordState
(`__op`, `__deleted`, `__lsn`, `__source_ts_ms`). Tombstones are skipped (the delete before
them carries the change). A message with no key, an unknown op or no sequence goes to
`quarantine/cdc.<topic>` with the reason; the batch continues.

`build_dimension` does the same one layer up: silver's change feed -> `scd.apply_scd2`.
"""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from include.lakehouse.cdc import apply_cdc
from include.lakehouse.config import SOURCES_FILE, get_table, lakehouse_root, load_sources
from include.lakehouse.delta import append, try_open
from include.lakehouse.delta import position as delta_position
from include.lakehouse.errors import LakehouseError
from include.lakehouse.maintenance import read_changes_since
from include.lakehouse.scd import apply_scd2

OPS = {"c", "r", "u", "d"}


def cdc_tables() -> dict[str, dict[str, Any]]:
    return load_sources().get("cdc") or {}


def dimensions() -> dict[str, dict[str, Any]]:
    return load_sources().get("dimensions") or {}


def _convert(value: Any, column: str, spec: dict[str, Any]) -> Any:
    """Undo Debezium's JSON encodings for the columns the table config names."""
    if value is None:
        return None
    if column in spec.get("timestamps", ()):
        return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=int(value))
    if column in spec.get("dates", ()):
        return date(1970, 1, 1) + timedelta(days=int(value))
    if column in (spec.get("decimals") or {}):
        return Decimal(str(value))
    return value


def parse_envelope(payload: str, spec: dict[str, Any]) -> dict[str, Any]:
    """One change as a flat row (image columns + _op, _lsn, _source_ts); ValueError says why not."""
    message = json.loads(payload)
    if not isinstance(message, dict):
        raise ValueError("not a JSON object")
    message = message.get("payload", message) if "schema" in message else message  # JsonConverter with schemas
    if "__op" in message or "__deleted" in message:  # unwrapped (ExtractNewRecordState)
        op = "d" if str(message.get("__deleted", "false")).lower() == "true" else message.get("__op")
        image = {k: v for k, v in message.items() if not k.startswith("__")}
        lsn, ts_ms = message.get("__lsn", message.get("__source_lsn")), message.get("__source_ts_ms", message.get("__ts_ms"))
    else:
        op = message.get("op")
        image = (message.get("before") if op == "d" else message.get("after")) or {}
        source = message.get("source") or {}
        lsn, ts_ms = source.get("lsn"), source.get("ts_ms", message.get("ts_ms"))
    if op not in OPS:
        raise ValueError(f"unknown op {op!r} (expected one of c, r, u, d)")
    missing = [k for k in spec["keys"] if image.get(k) is None]
    if missing:
        raise ValueError(f"no key: {missing} missing from the {'before' if op == 'd' else 'after'} image")
    if lsn is None:
        raise ValueError("no sequence: source.lsn (or __lsn) missing")
    row = {k: _convert(v, k, spec) for k, v in image.items()}
    row.update(_op=op, _lsn=int(lsn),
               _source_ts=datetime.fromtimestamp(int(ts_ms) / 1000, timezone.utc) if ts_ms is not None else None)
    return row


def _changes_table(rows: list[dict[str, Any]], spec: dict[str, Any]) -> pa.Table:
    types: dict[str, pa.DataType] = {c: pa.timestamp("us", tz="UTC") for c in spec.get("timestamps", ())}
    types.update({c: pa.date32() for c in spec.get("dates", ())})
    types.update({c: pa.decimal128(*p) for c, p in (spec.get("decimals") or {}).items()})
    types.update({"_op": pa.string(), "_lsn": pa.int64(), "_source_ts": pa.timestamp("us", tz="UTC")})
    columns = list(dict.fromkeys(c for r in rows for c in r))
    arrays = {}
    for column in columns:
        values = [r.get(column) for r in rows]
        arrays[column] = pa.array(values, types.get(column)) if column in types else pa.array(values)
    return pa.table(arrays)


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
        [datetime.now(timezone.utc)] * snapshot.num_rows, pa.timestamp("us", tz="UTC")))
    if dt.metadata().configuration.get("delta.enableChangeDataFeed") != "true":
        dt.alter.set_table_properties({"delta.enableChangeDataFeed": "true"})
    return feed


def apply_bronze_changes(table: str, *, batch_id: str | None = None) -> dict[str, Any]:
    """Apply what `bronze/<topic>` received since the last batch to `silver/<table>`."""
    started = time.perf_counter()
    if table not in cdc_tables():
        raise LakehouseError(f"unknown CDC table '{table}'; configure it under cdc: in {SOURCES_FILE}")
    spec = cdc_tables()[table]
    topic = spec["topic"]
    silver = get_table(f"silver/{table}")
    bronze = try_open(f"bronze/{topic}")
    if bronze is None:
        return {"table": table, "skipped": True, "detail": f"bronze/{topic} not there yet"}
    position = f"cdc_apply.bronze/{topic}"
    target = try_open(silver.uri)
    done = delta_position(target, position)
    current = bronze.version()
    if done is not None and done >= current:
        return {"table": table, "skipped": True, "detail": f"bronze/{topic} v{current} already applied",
                "counts": {}}
    feed = _read_feed(bronze, done, current)
    feed = feed.filter(pc.equal(feed.column("_change_type"), "insert"))
    rows, bad, tombstones = [], [], 0
    for record in feed.to_pylist():
        if record["tombstone"] or record["payload"] is None:
            tombstones += 1
            continue
        try:
            rows.append(parse_envelope(record["payload"], spec))
        except (ValueError, TypeError) as exc:
            bad.append({"_raw": record["payload"], "_reason": str(exc), "partition": record["partition"],
                        "offset": record["offset"]})
    if bad:
        append(f"{lakehouse_root()}/quarantine/cdc.{topic}",
               pa.Table.from_pylist(bad), app_id=f"cdc_quarantine.{topic}.{current}")
    if not rows:
        return {"table": table, "skipped": True, "detail": "no applicable changes", "quarantined": len(bad),
                "counts": {"quarantined": len(bad)}}
    result = apply_cdc(silver, _changes_table(rows, spec), keys=spec["keys"], sequence_column="_lsn",
                       op_column="_op", transactions={position: current})
    return {**result.to_dict(), "bronze_version": current, "changes": len(rows), "tombstones": tombstones,
            "quarantined": len(bad), "seconds": round(time.perf_counter() - started, 3),
            "counts": {"quarantined": len(bad)}}  # inserted/updated/deleted come as rows_*


def build_dimension(name: str) -> dict[str, Any]:
    """Apply silver's changes since the last batch to `gold/<name>` as SCD type 2."""
    if name not in dimensions():
        raise LakehouseError(f"unknown dimension '{name}'; configure it under dimensions: in {SOURCES_FILE}")
    dim = dimensions()[name]
    source_spec = cdc_tables()[dim["source"]]
    silver = try_open(f"silver/{dim['source']}")
    if silver is None:
        return {"dimension": name, "skipped": True, "detail": f"silver/{dim['source']} not there yet", "counts": {}}
    gold = get_table(f"gold/{name}")
    position = f"scd2.silver/{dim['source']}"
    target = try_open(gold.uri)
    done = delta_position(target, position)
    current = silver.version()
    if done is not None and done >= current:
        return {"dimension": name, "skipped": True, "detail": f"silver v{current} already applied", "counts": {}}
    feed = _read_feed(silver, done, current)
    change_type = feed.column("_change_type")
    feed = feed.filter(pc.is_in(change_type, pa.array(["insert", "update_postimage", "delete"])))
    keys, tracked, type1 = source_spec["keys"], dim["tracked"], dim.get("type1", [])
    deleted = pc.equal(feed.column("_change_type"), "delete")
    # a delete has no source time in silver (the row is gone): its commit time closes the version
    effective = pc.if_else(deleted, feed.column("_commit_timestamp").cast(pa.timestamp("us", tz="UTC")),
                           feed.column(dim["effective"]).cast(pa.timestamp("us", tz="UTC")))
    changes = feed.select(keys + tracked + type1).append_column("changed_at", effective).append_column("_deleted", deleted)
    result = apply_scd2(gold, changes, keys=keys, tracked=tracked, type1=type1, effective_column="changed_at",
                        deleted_column="_deleted", surrogate_key=dim["surrogate_key"],
                        transactions={position: current})
    return {**result.to_dict(), "silver_version": current,
            "counts": {"late": result.details.get("late", 0)}}  # versions inserted/updated come as rows_*
