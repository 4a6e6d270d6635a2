"""Kafka -> bronze: `ingest_topic` against raw consume of all partitions + building the Arrow
table, on the same broker and topic in the same run (200k messages of ~516 B, 3 partitions).

    python -m bench.run kafka
"""

from __future__ import annotations

import json

from bench import _data
from bench.harness import compare, median

TOPIC = "shop.order_events"  # registered, 3 partitions
MESSAGES = 200_000
REPEATS = 5  # the machine is shared: more turns, steadier medians


def _message(i: int) -> bytes:
    body = {"event_id": f"evt-{i:09d}", "order_id": i // 3, "customer_id": i % 9973, "status": "placed",
            "amount": round(1 + (i % 50_000) / 100, 2), "currency": "EUR", "ts": "2024-01-01T00:00:00+00:00",
            "items": [{"sku": f"sku-{(i + k) % 5000:05d}", "qty": 1 + k} for k in range(3)]}
    text = json.dumps(body, separators=(",", ":"))
    return (text[:-1] + ',"pad":"' + "x" * max(0, 516 - len(text) - 9) + '"}').encode()


def _produce(config: dict[str, str], n: int) -> None:
    from confluent_kafka import Producer

    producer = Producer({**config, "linger.ms": 20, "batch.num.messages": 10_000})
    for i in range(n):
        while True:
            try:
                producer.produce(TOPIC, key=str(i % 997).encode(), value=_message(i))
                break
            except BufferError:
                producer.poll(0.1)
        if i % 10_000 == 0:
            producer.poll(0)
    producer.flush(120)


def raw_consume_arrow(config: dict[str, str], partitions: list[int]):
    """The peer: every partition assigned at once, read to its end (partition-EOF), the message
    fields straight into an Arrow table. No validation, no Delta."""
    import pyarrow as pa
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    consumer = Consumer({**config, "group.id": "bench-raw", "enable.auto.commit": False,
                         "enable.partition.eof": True, "fetch.wait.max.ms": 10})
    consumer.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING) for p in partitions])
    unfinished = set(partitions)
    keys, values, parts, offsets, stamps = [], [], [], [], []
    try:
        while unfinished:
            for msg in consumer.consume(1000, timeout=0.1):  # the batch call with the last EOFs waits it out
                if msg.error() is not None:
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        raise RuntimeError(msg.error())
                    unfinished.discard(msg.partition())
                    continue
                keys.append(msg.key())
                values.append(msg.value())
                parts.append(msg.partition())
                offsets.append(msg.offset())
                stamps.append(msg.timestamp()[1])
    finally:
        consumer.close()
    return pa.table({"key": pa.array(keys, pa.binary()), "value": pa.array(values, pa.binary()),
                     "partition": pa.array(parts, pa.int32()), "offset": pa.array(offsets, pa.int64()),
                     "timestamp": pa.array(stamps, pa.int64()).cast(pa.timestamp("ms", tz="UTC"))})


def run() -> dict:
    root = _data.fresh_root("bench-kafka-")
    from include.lakehouse.ingest.kafka import ingest_topic

    with _data.broker(root) as config:
        _produce(config, MESSAGES)
        partitions = [0, 1, 2]
        results: list[dict] = []

        def peer() -> float:
            table = None

            def go():
                nonlocal table
                table = raw_consume_arrow(config, partitions)
            seconds = _data.timed(go)
            assert table.num_rows == MESSAGES, table.num_rows
            return seconds

        def project() -> float:
            _data.fresh_root("bench-kafka-run-")  # an empty bronze: the whole topic again
            seconds = _data.timed(lambda: results.append(ingest_topic(TOPIC, config, max_messages=MESSAGES + 1)))
            assert results[-1]["rows_inserted"] == MESSAGES, results[-1]
            return seconds

        runs = _data.interleaved({"raw_consume_arrow": peer, "ingest_topic": project}, REPEATS)
    peer_s, project_s = median(runs["raw_consume_arrow"]), median(runs["ingest_topic"])
    return {
        "messages": MESSAGES, "message_bytes": len(_message(0)), "partitions": 3, "repeats": REPEATS,
        "runs_seconds": {k: [round(x, 3) for x in v] for k, v in runs.items()},
        "best_seconds": {k: round(min(v), 3) for k, v in runs.items()},  # the least disturbed turn
        "ingest_messages_per_second": round(MESSAGES / project_s),
        "raw_consume_arrow_messages_per_second": round(MESSAGES / peer_s),
        "comparisons": [compare(
            "kafka_ingest_throughput", MESSAGES / project_s, MESSAGES / peer_s,
            peer_name="raw confluent-kafka consume of all partitions + Arrow table (same broker, topic, run)",
            unit="messages/s", higher_is_better=True, target="<= 1.43 (ingest >= 0.7x the peer's throughput)")],
        "note": "medians of interleaved runs; ingest_topic includes UTF-8/JSON validation and the Delta commit",
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
