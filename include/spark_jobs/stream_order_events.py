"""Spark job: Structured Streaming of shop.order_events into event-time windows (exactly once).

Reads the topic with the project's Kafka source (or `format("kafka")` where the spark-sql-kafka
jar exists), validates each event (bad ones to quarantine/stream.order_events with the reason),
aggregates tumbling and sliding windows under a watermark into gold/order_events_windows, keeps
the events Spark drops as late in silver/order_events_late, and records per-batch metrics in
ops/streaming_metrics. Each micro-batch commits once (app id = query id, version = batch id);
the checkpoint lives under the lakehouse.
Args: --trigger availableNow (default: what Airflow schedules) or a processingTime interval
("30 seconds": continuous, on a cluster); --max-offsets N (per micro-batch); --source
auto|python|jar; --tumbling/--sliding/--slide/--watermark (Spark intervals).
Kafka client settings: LAKEHOUSE_KAFKA_CONFIG (JSON), set by the task from kafka_default.
Returns the run's totals.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from include.lakehouse.spark.jobs import run_job  # noqa: E402


def parse_args(args: list[str]) -> dict[str, str]:
    import argparse

    parser = argparse.ArgumentParser(prog="stream_order_events")
    parser.add_argument("--trigger", default="availableNow")
    parser.add_argument("--max-offsets", type=int, default=None)
    parser.add_argument("--source", default="auto", choices=["auto", "python", "jar"])
    parser.add_argument("--query-name", default="stream_order_events")
    for name in ("tumbling", "sliding", "slide", "watermark"):
        parser.add_argument(f"--{name}", default=None)
    return vars(parser.parse_args(args))


def main(spark, args):
    from include.lakehouse.streaming.kafka_source import kafka_config_from_env
    from include.lakehouse.streaming.order_events import WindowSettings, run_query

    options = parse_args(args)
    settings = WindowSettings.from_args({k: v for k, v in options.items() if v is not None})
    result = run_query(spark, kafka_config_from_env(), settings=settings, trigger=options["trigger"],
                       query_name=options["query_name"], source=options["source"],
                       max_offsets_per_trigger=options["max_offsets"])
    return result  # data only: SparkJobOperator adds the task's summary (plugins/lakehouse_airflow/reports.py)


if __name__ == "__main__":
    run_job(main)
