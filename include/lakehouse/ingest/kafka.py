"""Kafka topics into bronze, exactly once, by explicit partition assignment.

Each run reads, per partition, from the next offset recorded in `bronze/<topic>` itself:
the commit that appends a batch also records, as Delta app transactions
(`kafka.<cluster>.<topic>.<partition>` -> next offset), how far each partition was read.
Data and positions commit together, so a crash after reading, or after writing but
before the task ends, never duplicates and never skips. No consumer group is joined
(slow, and its commits are not atomic with the data). Messages that are not UTF-8 JSON go
to `quarantine/<topic>` with the reason and never block their partition; tombstones
(null values: deletes downstream) are kept with `tombstone = true`.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from include.lakehouse.config import lakehouse_root, load_registry, load_sources
from include.lakehouse.delta import append, position, try_open
from include.lakehouse.errors import LakehouseError

BRONZE_SCHEMA = pa.schema([
    ("key", pa.string()), ("partition", pa.int32()), ("offset", pa.int64()),
    ("timestamp", pa.timestamp("ms", tz="UTC")), ("payload", pa.string()), ("tombstone", pa.bool_()),
    ("_ingested_at", pa.timestamp("us", tz="UTC")), ("_batch_id", pa.string()),
])
QUARANTINE_SCHEMA = pa.schema([
    ("key", pa.string()), ("partition", pa.int32()), ("offset", pa.int64()), ("_raw", pa.binary()),
    ("_reason", pa.string()), ("_ingested_at", pa.timestamp("us", tz="UTC")), ("_batch_id", pa.string()),
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


def create_topics(config: dict[str, Any]) -> list[str]:
    """Create the configured topics that do not exist yet; returns those created."""
    from confluent_kafka.admin import AdminClient, NewTopic

    existing = set(cluster_metadata(config).topics)
    wanted = [NewTopic(name, num_partitions=int(spec.get("partitions", 1)), replication_factor=1)
              for name, spec in topics().items() if name not in existing]
    if wanted:
        admin = AdminClient(config)  # keep the client alive until its futures resolve
        for future in admin.create_topics(wanted).values():
            future.result(timeout=30)
    return [t.topic for t in wanted]


def _position_key(cluster: str, topic: str, partition: int) -> str:
    return f"kafka.{cluster}.{topic}.{partition}"


def _decode(value: bytes | None) -> tuple[str | None, str | None]:
    """(payload, error): payload is the JSON text; None with no error for a tombstone."""
    if value is None:
        return None, None
    try:
        text = value.decode("utf-8")
        json.loads(text)
        return text, None
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8: {exc}"
    except ValueError as exc:
        return None, f"not JSON: {exc}"


def ingest_topic(topic: str, config: dict[str, Any], *, max_messages: int = 100_000, batch_id: str | None = None,
                 idle_polls: int = 2, poll_seconds: float = 1.0) -> dict[str, Any]:
    """Append the messages of `topic` not yet in bronze (bounded by `max_messages`)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    started = time.perf_counter()
    metadata = cluster_metadata(config)
    if topic not in metadata.topics:
        raise LakehouseError(f"topic '{topic}' does not exist on {config.get('bootstrap.servers')}; "
                             f"known: {sorted(t for t in metadata.topics if not t.startswith('__'))}")
    cluster = metadata.cluster_id or "kafka"
    partitions = sorted(metadata.topics[topic].partitions)
    bronze_uri = f"{lakehouse_root()}/bronze/{topic}"
    registered = f"bronze/{topic}" in load_registry()  # registered: created with its table properties (CDF)
    bronze = try_open(bronze_uri)
    start = {p: position(bronze, _position_key(cluster, topic, p)) for p in partitions}
    consumer = Consumer({**config, "group.id": config.get("group.id", "lakehouse-bronze"),
                         "enable.auto.commit": False, "enable.partition.eof": False})
    rows, bad, next_offset = [], [], {}
    now = datetime.now(timezone.utc)
    batch_id = batch_id or uuid.uuid4().hex
    try:
        for p in partitions:
            consumer.assign([TopicPartition(topic, p, start[p] if start[p] is not None else OFFSET_BEGINNING)])
            empty = 0
            # read until polls come back empty: high watermarks are not trusted (see ARCHITECTURE.md)
            while empty < idle_polls and len(rows) + len(bad) < max_messages:
                messages = consumer.consume(min(1000, max_messages - len(rows) - len(bad)), timeout=poll_seconds)
                if not messages:
                    empty += 1
                    continue
                empty = 0
                for msg in messages:
                    if msg.error():
                        raise LakehouseError(f"topic {topic} partition {p}: {msg.error()}")
                    key = msg.key().decode("utf-8", "replace") if msg.key() is not None else None
                    payload, error = _decode(msg.value())
                    next_offset[p] = msg.offset() + 1
                    if error:
                        bad.append({"key": key, "partition": p, "offset": msg.offset(), "_raw": msg.value(),
                                    "_reason": error, "_ingested_at": now, "_batch_id": batch_id})
                        continue
                    ts_type, ts = msg.timestamp()
                    rows.append({"key": key, "partition": p, "offset": msg.offset(),
                                 "timestamp": datetime.fromtimestamp(ts / 1000, timezone.utc) if ts_type else None,
                                 "payload": payload, "tombstone": payload is None,
                                 "_ingested_at": now, "_batch_id": batch_id})
    finally:
        consumer.close()
    if not next_offset:
        return {"topic": topic, "rows_inserted": 0, "rows_quarantined": 0, "partitions": len(partitions),
                "seconds": round(time.perf_counter() - started, 3)}
    positions = {_position_key(cluster, topic, p): o for p, o in next_offset.items()}
    if bad:  # keyed by the batch's positions: a rerun of the same batch does not quarantine twice
        append(f"{lakehouse_root()}/quarantine/{topic}", pa.Table.from_pylist(bad, schema=QUARANTINE_SCHEMA),
               app_id="quarantine." + hashlib.sha1(json.dumps(positions, sort_keys=True).encode()).hexdigest())
    result = append(f"bronze/{topic}" if registered else bronze_uri, pa.Table.from_pylist(rows, schema=BRONZE_SCHEMA),
                    transactions=positions,
                    metadata={"batch_id": batch_id, "cluster": cluster})
    return {"topic": topic, "rows_inserted": result.rows_inserted, "rows_quarantined": len(bad),
            "partitions": len(partitions), "version": result.version, "next_offsets": {str(k): v for k, v in next_offset.items()},
            "seconds": round(time.perf_counter() - started, 3)}


def check_topic_bronze(topic: str) -> dict[str, Any]:
    """Interim bronze check (the data-quality issue brings GX suites): every (partition,
    offset) at most once, and a payload on every message that is not a tombstone."""
    bronze = try_open(f"{lakehouse_root()}/bronze/{topic}")
    if bronze is None:
        return {"topic": topic, "rows": 0}
    table = bronze.to_pyarrow_table(columns=["partition", "offset", "payload", "tombstone"])
    duplicates = table.num_rows - table.group_by(["partition", "offset"]).aggregate([]).num_rows
    empty = table.filter(pa.compute.and_(pa.compute.is_null(table.column("payload")),
                                         pa.compute.invert(table.column("tombstone")))).num_rows
    if duplicates or empty:
        raise LakehouseError(f"bronze/{topic} check failed: {duplicates} duplicate (partition, offset) pair(s), "
                             f"{empty} message(s) without payload that are not tombstones")
    return {"topic": topic, "rows": table.num_rows}
