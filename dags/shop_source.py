"""
### shop_source

The synthetic shop as an upstream system: every day it **delivers the day's orders file**
into `landing/orders` (CSV, JSON lines or Parquet, rotating by day, about 2% malformed
rows, as real feeds are). A file it already delivered is never re-uploaded. Emits the
`landing/orders` asset, which starts `ingest_files`.
"""

from __future__ import annotations

from airflow.sdk import Asset, dag, task

from lakehouse_airflow.defaults import dag_args, run_day

LANDING_ORDERS = Asset(name="landing/orders", uri="lakehouse://landing/orders", group="landing")


@dag(**dag_args("shop_source", doc_md=__doc__, schedule="@daily", tags=["source", "shop"]))
def shop_source():
    @task(outlets=[LANDING_ORDERS])
    def deliver_orders_file_to_landing(dag_run=None) -> dict:
        from include.lakehouse.ingest.landing import deliver_orders_file

        return deliver_orders_file(run_day(dag_run))

    deliver_orders_file_to_landing()


shop_source()
