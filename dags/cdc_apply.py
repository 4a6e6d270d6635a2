"""
### cdc_apply

Turns the Debezium change streams landed in bronze (`bronze/shop.public.<table>`) into
**current-state silver tables** (`silver/<table>`, change data feed on), one merge per
table per batch. Reads only what bronze received since the last batch (bronze's change
feed from the version recorded in silver's Delta log, committed with the merge). Handles
envelopes and the unwrapped form, snapshots, tombstones, several changes per key (newest
LSN wins), out-of-order and redelivered events (an older event never overwrites newer
state), hard deletes; bad messages go to `quarantine/cdc.<topic>` with the reason.
Runs when ingest_kafka updates any of those bronze tables; counts in XCom and logs.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from lakehouse_airflow.assets import any_of, configured_cdc_tables, table_asset
from lakehouse_airflow.defaults import dag_args
from lakehouse_airflow.operators.data_quality import DataQualityOperator, has_suite

TABLES = configured_cdc_tables()  # silver table -> topic, from sources.yaml


@dag(**dag_args("cdc_apply", doc_md=__doc__, schedule=any_of([table_asset(f"bronze/{t}") for t in TABLES.values()]),
                tags=["cdc", "silver"]))
def cdc_apply():
    @task(map_index_template="{{ task.op_kwargs['table'] }}")
    def merge_changes_into_silver(table: str, dag_run=None):
        from include.lakehouse.cdc.flow import apply_bronze_changes

        from lakehouse_airflow import reports

        result = apply_bronze_changes(table, batch_id=dag_run.run_id)
        print(reports.cdc_line(result))
        return {**result, **reports.cdc_applied(result)}

    @task(outlets=[table_asset(f"silver/{t}") for t in TABLES])
    def announce_silver(results: list[dict]):
        """One asset event per silver table per run, once every table is merged."""
        return {"versions": [r.get("version") for r in results]}

    merged = merge_changes_into_silver.expand(table=list(TABLES))
    checks = [DataQualityOperator(task_id=f"validate_silver_{t}", suite=f"silver_{t}") for t in TABLES
              if has_suite(f"silver_{t}")]
    merged >> checks >> announce_silver(merged)


cdc_apply()
