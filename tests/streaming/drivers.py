"""What the streaming tests run in child processes (tests/processes.py): a producer and the
streaming queries on a local JVM Spark session, so a SIGKILL hits a real driver mid-batch and
pytest's own process never holds a JVM."""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def event(i: int, at: str, *, amount: str = "10.00", customer: int | None = None, kind: str = "order_placed") -> dict:
    return {"event_id": f"e{i}", "order_id": i, "customer_id": customer if customer is not None else i % 7,
            "event_type": kind, "event_time": at, "amount": amount}


def produce(config: dict[str, Any], values: list[Any], topic: str = "shop.order_events") -> None:
    from confluent_kafka import Producer

    producer = Producer(config)
    for i, value in enumerate(values):
        text = value if isinstance(value, str) or value is None else json.dumps(value)
        producer.produce(topic, key=str(i), value=text)
    assert producer.flush(30) == 0


def spark_session():
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from include.lakehouse.spark.session import get_spark

    return get_spark("streaming-test", master="local[2]", delta="bridge",
                     conf={"spark.sql.shuffle.partitions": "2"})


def run_order_events(config: dict[str, Any], steps: list[list[Any]] | None = None, *,
                     max_offsets: int | None = None) -> list[dict[str, Any]]:
    """For each step: produce its messages, then one availableNow run. No steps: one run."""
    from include.lakehouse.streaming.order_events import run_query

    spark = spark_session()
    results = []
    for values in steps or [[]]:
        if values:
            produce(config, values)
        results.append(run_query(spark, config, max_offsets_per_trigger=max_offsets, source="python"))
    return results


def run_customer_stats() -> dict[str, Any]:
    from include.lakehouse.streaming.change_feed import run_query

    return run_query(spark_session())
