"""
### spark_smoke

Runs the Spark job `include/spark_jobs/smoke_revenue_by_status.py` through the Spark job
runner whenever `bronze/smoke_orders` changes: Spark reads the Delta table, aggregates
revenue per order status and merges it into `gold/smoke_revenue_by_status`.
Where it runs is the `spark_default` connection's business: `local[*]` (warm Spark
Connect server on a laptop), a standalone cluster, YARN/Kubernetes or Databricks.
"""

from __future__ import annotations

from airflow.sdk import dag

from lakehouse_airflow.assets import table_asset
from lakehouse_airflow.defaults import dag_args
from lakehouse_airflow.operators.spark_job import SparkJobOperator


@dag(**dag_args("spark_smoke", doc_md=__doc__, schedule=[table_asset("bronze/smoke_orders")], tags=["smoke", "spark"]))
def spark_smoke():
    SparkJobOperator(
        task_id="compute_revenue_by_status_in_spark",
        job="smoke_revenue_by_status",
        outlets=[table_asset("gold/smoke_revenue_by_status")],
    )


spark_smoke()
