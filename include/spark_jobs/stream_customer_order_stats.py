"""Spark job: silver/orders' change data feed as a stream into gold/customer_order_stats.

Each micro-batch is a range of silver/orders versions (offsets in the checkpoint under the
lakehouse); customers' order counts and revenue move by the batch's changes and are merged
once per batch (app id = query id, version = batch id), so a restart never counts a change twice.
Args: --trigger availableNow (default) or a processingTime interval. Returns the run's totals.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from include.lakehouse.spark.jobs import run_job  # noqa: E402


def main(spark, args):
    import argparse

    from include.lakehouse.streaming.change_feed import run_query

    parser = argparse.ArgumentParser(prog="stream_customer_order_stats")
    parser.add_argument("--trigger", default="availableNow")
    result = run_query(spark, trigger=parser.parse_args(args).trigger)
    return result  # data only: SparkJobOperator adds the task's summary (plugins/lakehouse_airflow/reports.py)


if __name__ == "__main__":
    run_job(main)
