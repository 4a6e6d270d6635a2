"""Spark job: revenue and order count per order status from bronze/smoke_orders.

Reads the Delta table (natively where the engine has Delta, else through the bridge), aggregates in
Spark, and merges the result into gold/smoke_revenue_by_status by status.
Args: none. Returns the merge result.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from include.lakehouse.spark.bridge import read_delta, write_delta  # noqa: E402
from include.lakehouse.spark.jobs import run_job  # noqa: E402

# the job contract's lineage: registered tables read and written (reported by SparkJobOperator)
READS = ["bronze/smoke_orders"]
WRITES = ["gold/smoke_revenue_by_status"]


def main(spark, args):
    from pyspark.sql import functions as F

    orders = read_delta(spark, READS[0])
    by_status = orders.groupBy("status").agg(
        F.count("*").alias("orders"),
        F.sum("amount").cast("decimal(18,2)").alias("revenue"),
        F.max("order_date").alias("last_order_date"),
    )
    result = write_delta(by_status, WRITES[0], mode="merge", keys=["status"],
                         update_when="s.orders <> t.orders OR s.revenue <> t.revenue")
    return {**result.to_dict(), "source_rows": orders.count()}


if __name__ == "__main__":
    run_job(main)
