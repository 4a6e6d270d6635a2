"""
### ingest_files

Loads new landing files of the `orders` source into **`bronze/orders`**, each file's
content exactly once (its sha256 is recorded in the same Delta commit as its rows, so
retries, reruns, concurrent runs and the same bytes under another name load nothing twice),
with `_ingested_at`, `_source_file` and `_batch_id`. Files named in progress (`.tmp`,
`.part`, leading `.`/`_`, ...) or younger than the source's `settle_seconds` wait for a
later run. Rows that fail parsing, typing or checks go to **`quarantine/orders`** with the
raw record and reason; the good rows of the file still load. A file that cannot be read
at all (truncated, not UTF-8, wrong header, unsupported type) is quarantined whole as one
record and never blocks the others. New columns from files with good rows evolve bronze's
schema. Started by the `landing/orders` asset; the sensor also waits for files that arrive
late or are still settling.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import PokeReturnValue, dag, task

from lakehouse_airflow.assets import LANDING_ORDERS, table_asset
from lakehouse_airflow.defaults import dag_args
from lakehouse_airflow.operators.data_quality import DataQualityOperator



@dag(**dag_args("ingest_files", doc_md=__doc__, schedule=[LANDING_ORDERS], tags=["ingest", "bronze"]))
def ingest_files():
    @task.sensor(poke_interval=30, timeout=timedelta(hours=1), mode="reschedule", soft_fail=True)
    def wait_for_new_landing_files(dag_run=None) -> PokeReturnValue:
        from include.lakehouse.ingest.files import pending_files

        pending = pending_files("orders")
        # an asset event means the delivery happened: nothing new and nothing settling means it is loaded already
        delivered = str(getattr(dag_run, "run_type", "")).lower().endswith("asset_triggered")
        return PokeReturnValue(is_done=bool(pending["new"]) or (delivered and not pending["settling"]),
                               xcom_value=pending["new"])

    @task(outlets=[table_asset("bronze/orders"), table_asset("quarantine/orders")])
    def load_new_files_into_bronze(files: list[str], dag_run=None):
        from include.lakehouse.ingest.files import ingest_new_files
        from lakehouse_airflow.reports import files_ingested

        loaded = ingest_new_files("orders", batch_id=dag_run.run_id)
        return {"files": loaded, **files_ingested(loaded)}

    @task
    def check_bronze_orders():
        from include.lakehouse.source.landing import check_bronze
        from lakehouse_airflow.reports import bronze_checked

        result = check_bronze("orders")
        return {**result, **bronze_checked(result)}

    validate = DataQualityOperator(task_id="validate_bronze_orders", suite="bronze_orders")
    load_new_files_into_bronze(wait_for_new_landing_files()) >> check_bronze_orders() >> validate


ingest_files()
