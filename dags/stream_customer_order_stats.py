"""
### stream_customer_order_stats

Delta as a stream source: **`silver/orders`**' change data feed, read as a Structured Streaming
source (`include/spark_jobs/stream_customer_order_stats.py`), keeps **`gold/customer_order_stats`**
(orders, revenue, last order per customer) up to date incrementally: inserts and update
post-images add, deletes and update pre-images subtract. Each micro-batch merges once (Delta app
id = query id, version = batch id), so a crash and restart from the checkpoint never counts a
change twice. Starts whenever `silver/orders` changes; `availableNow` per run here, a
`processingTime` trigger on a cluster.
"""

from __future__ import annotations

from airflow.sdk import dag

from lakehouse_airflow.assets import table_asset
from lakehouse_airflow.defaults import dag_args
from lakehouse_airflow.operators.spark_job import SparkJobOperator


@dag(**dag_args("stream_customer_order_stats", doc_md=__doc__, schedule=[table_asset("silver/orders")],
                tags=["streaming", "spark", "cdf", "week:streaming"]))
def stream_customer_order_stats():
    SparkJobOperator(
        task_id="stream_order_changes_into_customer_stats",
        job="stream_customer_order_stats",
        job_args=["--trigger", "availableNow"],
        warm_connect=False,
        outlets=[table_asset("gold/customer_order_stats")],
    )


stream_customer_order_stats()
