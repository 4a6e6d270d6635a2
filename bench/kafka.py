"""Messages per second from a topic (3 partitions) into bronze, through the embedded broker."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bench.harness import free_port, scratch


def run() -> dict:
    from confluent_kafka import Producer

    from include.lakehouse.ingest.kafka import ingest_topic
    from scripts import kafka_broker

    os.environ["LAKEHOUSE_ROOT"] = str(scratch("kafka"))
    port = free_port()
    proc = kafka_broker.start(port, Path(os.environ["LAKEHOUSE_ROOT"]) / "kafka.log")
    try:
        config = kafka_broker.client_config(port)
        producer = Producer(config)
        n = 100_000
        for i in range(n):
            producer.produce("shop.order_events", key=str(i % 997), value=json.dumps({"n": i, "pad": "x" * 100}))
            if i % 10_000 == 0:
                producer.poll(0)
        producer.flush(60)
        started = time.perf_counter()
        result = ingest_topic("shop.order_events", config, max_messages=n)
        seconds = time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return {"messages": result["rows_inserted"], "seconds": round(seconds, 2),
            "messages_per_second": round(result["rows_inserted"] / seconds),
            "note": "all 3 partitions read at once, each until the client reports its end"}
