"""Streaming benchmark: the same windowed aggregation of order events in Spark Structured
Streaming (the project's job: Python Kafka source, watermark, Delta sinks per micro-batch) and
in bytewax 0.21 (a Python-native stream processor: EventClock watermark, tumbling and sliding
fold_window, late events on its side output), over one topic backlog on the embedded broker.

Measured in one run, same events: events/s (engine start to last output, Spark's session start
excluded and reported apart) and end-to-end latency per event (its message's log time to the
moment its window's output was committed - Spark: the micro-batch's Delta commit; bytewax: the
window's emission, in memory), p50 and p95. Each engine's backlog is produced to its own topic
right before it starts, so neither waits for the other. Late handling side by side: events each engine set
aside as late (Spark checks lateness against the previous micro-batch's watermark, bytewax per
event, so the counts differ by design). Flink is not in the comparison: no JVM artifacts can be
downloaded here (no Maven), and PyFlink needs them.

    BENCH_STREAM_EVENTS=5000 python -c "import bench.streaming as b; print(b.run())"
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from bench.harness import compare, free_port, scratch  # noqa: E402

TOPIC = "shop.order_events"
BASE = datetime(2024, 1, 1, tzinfo=timezone.utc)
LATE_EVERY = 50  # one event in 50 is two hours behind (beyond the 30-minute watermark)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(round(q * (len(values) - 1))))], 3)


def events(n: int) -> list[dict]:
    out = []
    for i in range(n):
        at = BASE + timedelta(seconds=i * 0.05)
        if i % LATE_EVERY == LATE_EVERY - 1 and i > n // 3:
            at -= timedelta(hours=2)
        out.append({"event_id": f"b{i}", "order_id": i, "customer_id": i % 997, "event_type": "order_placed",
                    "event_time": at.isoformat(), "amount": f"{(i % 100) + 0.5:.2f}"})
    return out


def produce(config: dict, values: list[dict], topic: str) -> None:
    """The backlog, produced right before an engine starts: its latency is its own, not the other's run."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(config)  # kept alive until the topic exists: the future dies with its client
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(30)
    producer = Producer({**config, "linger.ms": 5})
    for i, v in enumerate(values):
        producer.produce(topic, key=str(v["order_id"]), value=json.dumps(v))
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0


def run_spark(config: dict, n: int) -> dict:
    from include.lakehouse.spark.session import get_spark
    from include.lakehouse.streaming.order_events import run_query

    started = time.perf_counter()
    spark = get_spark("bench-streaming", master="local[2]", delta="bridge", conf={"spark.sql.shuffle.partitions": "2"})
    session = time.perf_counter() - started
    produce(config, events(n), f"{TOPIC}.spark")
    latencies: list[float] = []
    t0 = time.perf_counter()
    result = run_query(spark, config, topic=f"{TOPIC}.spark", source="python", max_offsets_per_trigger=max(1000, n // 5),
                       latencies=latencies)
    seconds = time.perf_counter() - t0
    spark.stop()
    return {"seconds": round(seconds, 2), "session_seconds": round(session, 2), "events_per_second": round(n / seconds, 1),
            "latency_p50_s": _percentile(latencies, 0.5), "latency_p95_s": _percentile(latencies, 0.95),
            "late_events": result["late_events"], "quarantined": result["quarantined"], "batches": len(result["batches"]),
            "windows_updated": result["windows_updated"]}


def run_bytewax(config: dict, n: int) -> dict:
    import bytewax.operators as op
    import bytewax.operators.windowing as win
    from bytewax.connectors.kafka import KafkaSource
    from bytewax.dataflow import Dataflow
    from bytewax.testing import TestingSink, run_main

    def parse(msg):
        try:
            e = json.loads(msg.value)
            ts_type, ts = msg.timestamp
            return {"id": e["event_id"], "t": datetime.fromisoformat(e["event_time"]), "customer": int(e["customer_id"]),
                    "amount": float(e["amount"]), "log_time": ts / 1000}
        except (ValueError, KeyError, TypeError):
            return None

    def build():
        return {"events": 0, "revenue": 0.0, "customers": set(), "log_times": []}

    def fold(acc, e):
        acc["events"] += 1
        acc["revenue"] += e["amount"]
        acc["customers"].add(e["customer"])
        acc["log_times"].append(e["log_time"])
        return acc

    def merge(a, b):
        return {"events": a["events"] + b["events"], "revenue": a["revenue"] + b["revenue"],
                "customers": a["customers"] | b["customers"], "log_times": a["log_times"] + b["log_times"]}

    produce(config, events(n), f"{TOPIC}.bytewax")
    out, late = [], []
    flow = Dataflow("order_events_windows")
    msgs = op.input("kafka", flow, KafkaSource([config["bootstrap.servers"]], [f"{TOPIC}.bytewax"], tail=False))
    parsed = op.filter_map("parse", msgs, parse)
    keyed = op.key_on("one_key", parsed, lambda _e: "all")
    clock = win.EventClock(lambda e: e["t"], wait_for_system_duration=timedelta(minutes=30))
    for name, windower in (("tumbling", win.TumblingWindower(length=timedelta(minutes=10), align_to=BASE)),
                           ("sliding", win.SlidingWindower(length=timedelta(minutes=10), offset=timedelta(minutes=5),
                                                           align_to=BASE))):
        windows = win.fold_window(name, keyed, clock, windower, build, fold, merge)
        stamped = op.map(f"{name}_emitted", windows.down, lambda kv: (time.time(), kv[1][1]["log_times"]))
        op.output(f"{name}_out", stamped, TestingSink(out))
        op.output(f"{name}_late", windows.late, TestingSink(late))
    t0 = time.perf_counter()
    run_main(flow)
    seconds = time.perf_counter() - t0
    latencies = [emitted - log for emitted, logs in out for log in logs]
    late_events = len({item[1][1]["id"] for item in late})  # an event can be late for several windows
    return {"seconds": round(seconds, 2), "events_per_second": round(n / seconds, 1),
            "latency_p50_s": _percentile(latencies, 0.5), "latency_p95_s": _percentile(latencies, 0.95),
            "late_events": late_events, "late_items": len(late), "windows_emitted": len(out)}


def run() -> dict:
    from scripts import kafka_broker

    n = int(os.environ.get("BENCH_STREAM_EVENTS", 5_000))
    folder = scratch("streaming")
    os.environ["LAKEHOUSE_ROOT"] = str(folder / "lakehouse")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    port = free_port()
    broker = kafka_broker.start(port, folder / "kafka.log")
    try:
        config = kafka_broker.client_config(port)
        bytewax = run_bytewax(config, n)
        spark = run_spark(config, n)
    finally:
        broker.terminate()
        broker.wait(timeout=10)
    note = "recorded, not a target: a backlog read in micro-batches (Spark) vs per event (bytewax)"
    comparisons = [
        compare("events per second (order-event windows from a Kafka backlog)", spark["events_per_second"],
                bytewax["events_per_second"], peer_name="bytewax 0.21", unit="events/s", higher_is_better=True,
                target="none: Spark pays per-batch Delta commits and JVM<->Python hops, and scales out; bytewax runs one worker here"),
        *(compare(f"end-to-end latency {q} (log time -> output)", spark[f"latency_{q}_s"], bytewax[f"latency_{q}_s"],
                  peer_name="bytewax 0.21", unit="s", target=note)
          for q in ("p50", "p95") if spark[f"latency_{q}_s"] and bytewax[f"latency_{q}_s"]),
    ]
    return {"events": n, "late_every": LATE_EVERY, "spark": spark, "bytewax": bytewax, "comparisons": comparisons}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2, default=str))
