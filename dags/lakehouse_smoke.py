"""
### lakehouse_smoke

Proves the lakehouse write path end to end on every deployment: generates one day of
synthetic shop orders (seeded by the logical date), **appends them to `bronze/smoke_orders`
exactly once** (a Delta app transaction keyed by the logical date, so retries and reruns
add nothing), **merges the day's revenue into `gold/smoke_daily_revenue`**, and reads both
back to check row counts. Emits the `bronze/smoke_orders` asset, which starts `spark_smoke`.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from lakehouse_airflow.assets import table_asset
from lakehouse_airflow.defaults import dag_args, run_day

SMOKE_ORDERS = table_asset("bronze/smoke_orders")
DAILY_REVENUE = table_asset("gold/smoke_daily_revenue")


@dag(**dag_args("lakehouse_smoke", doc_md=__doc__, schedule="@daily", tags=["smoke"]))
def lakehouse_smoke():
    @task(outlets=[SMOKE_ORDERS])
    def append_orders_to_bronze(dag_run=None):
        from include.lakehouse.quality.smoke import append_smoke_orders

        return append_smoke_orders(run_day(dag_run), run_id=dag_run.run_id)

    @task(outlets=[DAILY_REVENUE])
    def merge_daily_revenue_into_gold(dag_run=None):
        from include.lakehouse.quality.smoke import merge_daily_revenue

        return merge_daily_revenue(run_day(dag_run))

    @task
    def check_tables_read_back(dag_run=None):
        from include.lakehouse.quality.smoke import check_smoke_tables

        return check_smoke_tables(run_day(dag_run))

    append_orders_to_bronze() >> merge_daily_revenue_into_gold() >> check_tables_read_back()


lakehouse_smoke()
