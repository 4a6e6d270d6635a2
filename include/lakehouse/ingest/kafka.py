"""Kafka topics into bronze, exactly once and complete, by explicit partition assignment.

Each run plans from one snapshot of `bronze/<topic>`: per partition, the next offset that
bronze's own Delta log records (app transactions `kafka.<cluster>.<topic>.<partition>` ->
next offset), committed together with the rows that got it there. The run assigns every
partition at once and reads each to its end, which is a fact the client reports
(end-of-partition event), never a guess from idle polls or the broker's high watermark (the
embedded broker's lags). It then appends the rows and the new positions in one commit that
is refused when the positions it planned from have moved: a concurrent run on the same
topic, or a retry beside a stuck try, makes the losers re-plan from the winner's positions,
so any number of runs land each message once. A bounded run (`max_messages`) records
positions only for what it read; a run that cannot reach the end of every partition within
its safety timeout fails without committing what it read, never reporting an unfinished
partition as done.

Messages that are not UTF-8 JSON go to `quarantine/<topic>` with the reason, never block
their partition, and are quarantined once: the quarantine commit records its own positions
(same app ids, on the quarantine table), and a message below them is known to be there
already, so a run killed between the quarantine and the bronze commit is rerun without
duplicates. Rows in = rows in bronze + rows quarantined. Tombstones (null values: deletes
downstream) are kept in bronze with `tombstone = true`; a key that is not UTF-8 keeps its
bytes in `key_raw` (`key` is null), a UTF-8 key is in `key`. No consumer group is joined
(slow, and its commits are not atomic with the data).

Decoding is columnar: message fields are gathered per consume batch, then checked in chunks
(UTF-8 by one Arrow cast, JSON by one msgspec pass, nesting depth by the text's length and,
only for a text long enough to nest deeper than the rule, its brackets); json.loads decides, row
by row, only the messages of a chunk that the bulk check does not pass, so verdicts and reasons
are those of json.loads for every message.
"""

from __future__ import annotations

import gc
import json
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from include.lakehouse.config import load_sources
from include.lakehouse.errors import LakehouseError
from include.lakehouse.failpoints import reach
from include.lakehouse.tables.delta import append, position, try_open, with_commit_retries
from include.lakehouse.tables.registry import table_ref

BRONZE_SCHEMA = pa.schema([
    ("key", pa.string()), ("key_raw", pa.binary()), ("partition", pa.int32()), ("offset", pa.int64()),
    ("timestamp", pa.timestamp("ms", tz="UTC")), ("payload", pa.string()), ("tombstone", pa.bool_()),
    ("_ingested_at", pa.timestamp("us", tz="UTC")), ("_batch_id", pa.string()),
])
QUARANTINE_SCHEMA = pa.schema([
    ("key", pa.string()), ("key_raw", pa.binary()), ("partition", pa.int32()), ("offset", pa.int64()),
    ("_raw", pa.binary()), ("_reason", pa.string()),
    ("_ingested_at", pa.timestamp("us", tz="UTC")), ("_batch_id", pa.string()),
])


def topics() -> dict[str, dict[str, Any]]:
    return load_sources().get("topics") or {}


def cluster_metadata(config: dict[str, Any], timeout: float = 10.0):
    """Broker metadata; a clear error when the broker cannot be reached."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    try:
        return AdminClient(config).list_topics(timeout=timeout)
    except KafkaException as exc:
        raise LakehouseError(
            f"Kafka broker at {config.get('bootstrap.servers')} is unreachable ({exc}); start it "
            "(make demo starts the embedded one) or fix the kafka_default connection"
        ) from None


def _position_key(cluster: str, topic: str, partition: int) -> str:
    return f"kafka.{cluster}.{topic}.{partition}"


MAX_JSON_DEPTH = 500
TOO_DEEP = f"not JSON: nested deeper than {MAX_JSON_DEPTH} levels"


def _depth(value: bytes) -> int:
    """Deepest nesting of objects and arrays in a JSON text (brackets inside strings ignored)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in value:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):  # { [
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x7D, 0x5D):
            depth -= 1
    return deepest


def _enough_brackets(value: bytes) -> bool:
    """More opening brackets than MAX_JSON_DEPTH: only such a text can nest deeper (cheap, before `_depth`)."""
    return value.count(b"{") + value.count(b"[") > MAX_JSON_DEPTH


def _decode(value: bytes | None) -> tuple[str | None, str | None]:
    """(payload, error): payload is the JSON text; None with no error for a tombstone. Deep
    nesting is decided by a fixed rule (MAX_JSON_DEPTH), never by the interpreter's recursion
    limit, which other libraries in a task process move: a message gets the same verdict in
    every process."""
    if value is None:
        return None, None
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8: {exc}"
    if _enough_brackets(value) and _depth(value) > MAX_JSON_DEPTH:
        return None, TOO_DEEP
    try:
        json.loads(text)
        return text, None
    except ValueError as exc:
        return None, f"not JSON: {exc}"
    except RecursionError:  # only with a recursion limit lowered far below Python's default
        return None, TOO_DEEP


def _key(raw: bytes | None) -> tuple[str | None, bytes | None]:
    """(key, key_raw): a UTF-8 key as text; any other key as its bytes, never U+FFFD (two
    distinct binary keys must stay distinct, e.g. for compaction or CDC downstream)."""
    if raw is None:
        return None, None
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, raw


@dataclass
class _Batch:
    rows: pa.Table = field(default_factory=BRONZE_SCHEMA.empty_table)
    bad: list[dict[str, Any]] = field(default_factory=list)
    already_quarantined: int = 0
    next_offset: dict[int, int] = field(default_factory=dict)
    unfinished: set[int] = field(default_factory=set)


_CHUNK = 16_384


class _AnyObject(msgspec.Struct):
    """A JSON object: its members are parsed (so checked) and skipped, nothing is built."""


_OBJECT = msgspec.json.Decoder(_AnyObject)
_ANY = msgspec.json.Decoder()


def _not_proven_json(raw: list[bytes | None]) -> list[int]:
    """Rows of a chunk that msgspec does not prove to be one valid JSON object (tombstones
    aside): json.loads decides those. msgspec accepts nothing json.loads rejects (a test holds
    it to that) and rejects a few things json.loads takes (NaN, lone surrogates, a non-object),
    so the verdict is json.loads' one for every row. One C-level pass over the chunk; row by
    row only in a chunk where that pass fails."""
    present = raw if None not in raw else [v for v in raw if v is not None]
    try:
        deque(map(_OBJECT.decode, present), maxlen=0)
        return []
    except (msgspec.DecodeError, RecursionError):
        pass
    out = []
    for i, value in enumerate(raw):
        if value is not None:
            try:
                _OBJECT.decode(value)
            except (msgspec.DecodeError, RecursionError):
                out.append(i)
    return out


def _maybe_too_deep(chunk: pa.Array, raw: list[bytes | None]) -> list[int]:
    """Rows that may nest deeper than MAX_JSON_DEPTH. Nesting deeper takes more than
    MAX_JSON_DEPTH opening brackets and as many closing ones, so a valid text must be over twice
    that long: the length (vectorised) rules out the shorter rows, and a longer one is kept when
    it has more brackets than the rule (bytes.count: several times faster than Arrow's
    count_substring over the whole chunk). A row the bulk JSON pass rejects goes to _decode anyway."""
    long = pc.indices_nonzero(pc.fill_null(pc.greater(pc.binary_length(chunk), 2 * MAX_JSON_DEPTH + 1), False))
    return [i for i in long.to_pylist() if _enough_brackets(raw[i])]


def _columns(keys: list[bytes | None], values: list[bytes | None]) -> tuple[pa.ChunkedArray, pa.ChunkedArray,
                                                                          pa.ChunkedArray, dict[int, str]]:
    """(key, key_raw, payload, reasons by row) in bulk; per row only inside a chunk that needs it."""
    key_bytes, value_bytes = pa.array(keys, pa.binary()), pa.array(values, pa.binary())
    key_parts, raw_parts, payload_parts, reasons = [], [], [], {}
    for s in range(0, len(values), _CHUNK):
        chunk_keys, chunk = key_bytes[s:s + _CHUNK], value_bytes[s:s + _CHUNK]
        raw = values[s:s + _CHUNK]
        try:
            key_parts.append(chunk_keys.cast(pa.string()))
            raw_parts.append(pa.nulls(len(chunk_keys), pa.binary()))
        except pa.ArrowInvalid:  # a key that is not UTF-8 in this chunk
            pairs = [_key(k) for k in keys[s:s + _CHUNK]]
            key_parts.append(pa.array([k for k, _ in pairs], pa.string()))
            raw_parts.append(pa.array([r for _, r in pairs], pa.binary()))
        try:
            text = chunk.cast(pa.string())  # UTF-8 checked for the whole chunk at once
            slow = sorted(set(_not_proven_json(raw)) | set(_maybe_too_deep(chunk, raw)))
        except pa.ArrowInvalid:
            text, slow = None, range(len(raw))
        decoded = {i: _decode(raw[i]) for i in slow}
        reasons.update((s + i, reason) for i, (_, reason) in decoded.items() if reason)
        if text is None:
            text = pa.array([decoded[i][0] for i in range(len(raw))], pa.string())
        payload_parts.append(text)
    return (pa.chunked_array(key_parts, pa.string()), pa.chunked_array(raw_parts, pa.binary()),
            pa.chunked_array(payload_parts, pa.string()), reasons)


_READ_SCHEMA = pa.schema([f for f in BRONZE_SCHEMA if f.name in ("key", "key_raw", "partition", "offset", "timestamp",
                                                                "payload")])


def _read_to_end(topic: str, config: dict[str, Any], start: dict[int, int | None], quarantined: dict[int, int | None],
                 *, max_messages: int, deadline: float, batch_id: str) -> _Batch:
    """Read every partition from `start` until the client reports its end (or `max_messages`).
    Bad messages below `quarantined` are counted, not collected: they are in quarantine already.
    Messages are taken in batches, their fields gathered into columns and decoded in bulk, a
    chunk at a time while the client goes on fetching."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

    # The client reports a partition's end only on a fetch that brought nothing new, and a broker
    # holds a fetch up to fetch.wait.max.ms (500 ms by default) for new messages: on a partition
    # written more often than that, no fetch comes back empty and its end is never reported.
    consumer = Consumer({"fetch.wait.max.ms": 10, **config, "group.id": config.get("group.id", "lakehouse-bronze"),
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         # a stored position the log no longer holds is an error, not a silent jump
                         "auto.offset.reset": "error"})
    batch = _Batch(unfinished=set(start))
    now = datetime.now(timezone.utc)
    keys: list[bytes | None] = []
    values: list[bytes | None] = []
    partitions: list[int] = []
    offsets: list[int] = []
    stamps: list[tuple[int, int]] = []
    chunks: list[pa.Table] = []
    bad: list[tuple[int, str, bytes]] = []  # (row, reason, value) in read order
    read = 0

    def decode() -> None:  # the gathered messages become one chunk of columns
        key, key_raw, payload, reasons = _columns(keys, values)
        stamp_types, stamp_values = (np.array(c, np.int64) for c in zip(*stamps))
        bad.extend((read - len(values) + i, reason, values[i]) for i, reason in sorted(reasons.items()))
        chunks.append(pa.Table.from_arrays([
            key, key_raw, pa.array(partitions, pa.int32()), pa.array(offsets, pa.int64()),
            pa.array(stamp_values, pa.int64(), mask=stamp_types == 0).cast(pa.timestamp("ms", tz="UTC")),  # 0: none
            payload], schema=_READ_SCHEMA))
        for gathered in (keys, values, partitions, offsets, stamps):
            gathered.clear()

    collecting = gc.isenabled()  # the read allocates a few objects per message and makes no cycles:
    gc.disable()                 # collections would only walk them over and over
    try:
        consumer.assign([TopicPartition(topic, p, o if o is not None else OFFSET_BEGINNING) for p, o in start.items()])
        while batch.unfinished and read < max_messages:
            if time.monotonic() > deadline:
                raise LakehouseError(
                    f"topic {topic}: did not reach the end of partition(s) {sorted(batch.unfinished)} before the "
                    f"safety timeout ({read} message(s) read); nothing was committed for this batch. The "
                    "broker is slow or stalled: check it and rerun, or raise timeout_seconds")
            # a batch call returns when it has its count or at its timeout: the call that brings the
            # last end-of-partition events waits the whole timeout, so keep it short
            messages = consumer.consume(min(1000, max_messages - read), timeout=0.1)
            if any(map(Message.error, messages)):  # an end-of-partition (or error) event among them
                for msg in [m for m in messages if m.error() is not None]:
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        raise LakehouseError(f"topic {topic} partition {msg.partition()} (from offset "
                                             f"{start.get(msg.partition())}): {msg.error()}")
                    batch.unfinished.discard(msg.partition())  # the batch ends here for this partition
                    consumer.pause([TopicPartition(topic, msg.partition())])
                messages = [m for m in messages if m.error() is None]
            read += len(messages)  # the fields, column by column, in C-level passes over the batch
            keys += map(Message.key, messages)
            values += map(Message.value, messages)
            partitions += map(Message.partition, messages)
            offsets += map(Message.offset, messages)
            stamps += map(Message.timestamp, messages)
            if len(values) >= _CHUNK:
                decode()
        if values:
            decode()
    finally:
        if collecting:
            gc.enable()
        consumer.close()
    if not chunks:
        return batch
    rows = pa.concat_tables(chunks)
    part, offset = rows.column("partition").to_numpy(), rows.column("offset").to_numpy()
    for p in np.unique(part):
        batch.next_offset[int(p)] = int(offset[part == p].max()) + 1
    good = np.ones(rows.num_rows, bool)
    for i, reason, value in bad:
        good[i] = False
        p, o = int(part[i]), int(offset[i])
        if quarantined.get(p) is not None and o < quarantined[p]:
            batch.already_quarantined += 1
        else:
            batch.bad.append({"key": rows.column("key")[i].as_py(), "key_raw": rows.column("key_raw")[i].as_py(),
                              "partition": p, "offset": o, "_raw": value, "_reason": reason, "_ingested_at": now,
                              "_batch_id": batch_id})
    if bad:
        rows = rows.filter(pa.array(good))
    n, at = rows.num_rows, pa.scalar(now, pa.timestamp("us", tz="UTC")).value
    batch.rows = pa.Table.from_arrays([
        *rows.columns, rows.column("payload").is_null(),
        pa.array(np.full(n, at, np.int64)).cast(pa.timestamp("us", tz="UTC")), pa.array([batch_id] * n, pa.string()),
    ], names=rows.column_names + ["tombstone", "_ingested_at", "_batch_id"]).select(BRONZE_SCHEMA.names).cast(BRONZE_SCHEMA)
    return batch


def ingest_topic(topic: str, config: dict[str, Any], *, max_messages: int = 100_000, batch_id: str | None = None,
                 timeout_seconds: float = 900.0) -> dict[str, Any]:
    """Append the messages of `topic` not yet in bronze (at most `max_messages`), re-planning
    when a concurrent run committed first. `timeout_seconds` only guards against a stalled
    broker: reaching it fails the run."""
    started = time.perf_counter()
    deadline = time.monotonic() + timeout_seconds
    metadata = cluster_metadata(config)
    if topic not in metadata.topics:
        raise LakehouseError(f"topic '{topic}' does not exist on {config.get('bootstrap.servers')}; "
                             f"known: {sorted(t for t in metadata.topics if not t.startswith('__'))}")
    cluster = metadata.cluster_id or "kafka"
    partitions = sorted(metadata.topics[topic].partitions)
    bronze, quarantine = table_ref(f"bronze/{topic}"), table_ref(f"quarantine/{topic}")
    batch_id = batch_id or uuid.uuid4().hex
    plans, quarantined_here = 0, 0  # over every plan of this run: an earlier plan may have quarantined

    def plan_and_commit() -> dict[str, Any]:
        nonlocal plans, quarantined_here
        plans += 1
        bronze_table, quarantine_table = try_open(bronze), try_open(quarantine)
        keys = {p: _position_key(cluster, topic, p) for p in partitions}
        start = {p: position(bronze_table, keys[p]) if bronze_table else None for p in partitions}
        quarantined = {p: position(quarantine_table, keys[p]) if quarantine_table else None for p in partitions}
        batch = _read_to_end(topic, config, start, quarantined, max_messages=max_messages, deadline=deadline,
                             batch_id=batch_id)
        result = {"topic": topic, "rows_inserted": 0, "rows_already_quarantined": batch.already_quarantined,
                  "partitions": len(partitions), "complete": not batch.unfinished, "version": None,
                  "next_offsets": {str(p): o for p, o in sorted(batch.next_offset.items())}}
        if not batch.next_offset:
            return result
        read = sorted(batch.next_offset)
        if batch.bad:  # before bronze: once bronze records a position, nothing below it is read again
            append(quarantine, pa.Table.from_pylist(batch.bad, schema=QUARANTINE_SCHEMA),
                   transactions={keys[p]: max(batch.next_offset[p], quarantined[p] or 0) for p in read},
                   expected={keys[p]: quarantined[p] for p in read}, metadata={"batch_id": batch_id})
            quarantined_here += len(batch.bad)
            reach("kafka.after_quarantine_commit")
        written = append(bronze, batch.rows,
                         transactions={keys[p]: batch.next_offset[p] for p in read},
                         expected={keys[p]: start[p] for p in read},
                         metadata={"batch_id": batch_id, "cluster": cluster})
        return {**result, "rows_inserted": written.rows_inserted, "version": written.version}

    result = with_commit_retries(plan_and_commit, what=f"ingest of topic {topic} into bronze")
    return {**result, "rows_quarantined": quarantined_here, "plans": plans,
            "seconds": round(time.perf_counter() - started, 3)}


def check_topic_bronze(topic: str) -> dict[str, Any]:
    """Interim bronze check (the data-quality issue brings GX suites): every message (partition,
    offset) landed at most once, in bronze or in quarantine but never both, and a payload on
    every bronze message that is not a tombstone."""
    bronze = try_open(table_ref(f"bronze/{topic}"))
    if bronze is None:
        return {"topic": topic, "rows": 0, "quarantined": 0}
    quarantine = try_open(table_ref(f"quarantine/{topic}"))
    table = bronze.to_pyarrow_table(columns=["partition", "offset", "payload", "tombstone"])
    bad = quarantine.to_pyarrow_table(columns=["partition", "offset"]) if quarantine else None
    landed = pa.concat_tables([table.select(["partition", "offset"])] + ([bad] if bad is not None else []))
    twice = landed.num_rows - landed.group_by(["partition", "offset"]).aggregate([]).num_rows
    empty = table.filter(pa.compute.and_(pa.compute.is_null(table.column("payload")),
                                         pa.compute.invert(table.column("tombstone")))).num_rows
    if twice or empty:
        raise LakehouseError(f"bronze/{topic} check failed: {twice} message(s) (partition, offset) landed twice "
                             f"(in bronze, in quarantine or in both), {empty} message(s) without payload that "
                             "are not tombstones")
    return {"topic": topic, "rows": table.num_rows, "quarantined": bad.num_rows if bad is not None else 0}
