"""
### feature_build

Runs the Spark job `include/spark_jobs/customer_features.py` through the Spark job runner:
point-in-time churn features per customer (recency, 7/30/90-day order counts and spend,
average basket, tenure, event activity, segment from the SCD2 version valid at the as-of
instant) into `features/customer_features`, partition `as_of_date`. Three dates per run: the
run's day (what batch_inference scores), the newest date whose 30-day label window has
passed (what train_model learns from, and where evaluate_models judges the models on matured
labels) and the window before it (a cold start's baseline champion learns from it). Source
table versions are pinned and recorded.
Runs when silver orders and the customer dimension change.
"""

from __future__ import annotations

from airflow.sdk import dag

from lakehouse_airflow.assets import table_asset
from lakehouse_airflow.defaults import dag_args
from lakehouse_airflow.operators.data_quality import DataQualityOperator
from lakehouse_airflow.operators.spark_job import SparkJobOperator

RUN_DAY = "{{ (dag_run.logical_date or dag_run.run_after).strftime('%Y-%m-%d') }}"
TRAINING_DAY = "{{ ((dag_run.logical_date or dag_run.run_after) - macros.timedelta(days=31)).strftime('%Y-%m-%d') }}"
BASELINE_DAY = "{{ ((dag_run.logical_date or dag_run.run_after) - macros.timedelta(days=62)).strftime('%Y-%m-%d') }}"


@dag(**dag_args("feature_build", doc_md=__doc__, tags=["ml", "features", "spark", "week:ml"],
                schedule=table_asset("silver/orders") & table_asset("gold/dim_customer")))
def feature_build():
    build = SparkJobOperator(
        task_id="build_customer_features_in_spark",
        job="customer_features",
        job_args=[RUN_DAY, TRAINING_DAY, BASELINE_DAY],
    )
    build >> DataQualityOperator(task_id="validate_features", suite="features_customer_features",
                                 outlets=[table_asset("features/customer_features")])


feature_build()
