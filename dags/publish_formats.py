"""
### publish_formats

The multi-format week: every registered **gold** table is also an **Iceberg** table (SQL catalog
on SQLite in `<lakehouse>/warehouse/`; REST, Glue or Unity by `LAKEHOUSE_ICEBERG_CATALOG`) and a
**Hudi** copy-on-write table (`<lakehouse>/hudi/...`, read with hudi-rs), without copying data:
each new Delta version becomes an Iceberg snapshot (add_files of Delta's own parquet files,
removed files deleted from the snapshot) and a Hudi instant (hardlinked base files, timeline
from the Delta log). Partitioned tables are rewritten instead, and `ops/format_publish_log`
says which and why. Incremental: only new Delta versions are translated, a rerun is a no-op;
an Iceberg snapshot expires (metadata only) once the Delta version after it is older than the
table's vacuum retention, and
Delta's vacuum keeps every file an Iceberg snapshot still references.

Hudi is read-only here (no Hudi writer on PyPI); a Spark + Hudi bundle would add native writes.
Runs whenever a gold table is updated, and publishes the tables whose updates started the run (every
gold table on a manual run). Read any format with `include.lakehouse.formats.query`.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from lakehouse_airflow.assets import any_of, registered_tables, table_asset
from lakehouse_airflow.defaults import dag_args

GOLD = registered_tables("gold")


@dag(**dag_args("publish_formats", doc_md=__doc__, schedule=any_of([table_asset(t) for t in GOLD]),
                tags=["formats", "gold", "iceberg", "hudi", "week:formats"]))
def publish_formats():
    @task
    def tables_to_publish(triggering_asset_events=None) -> list[str]:
        """The gold tables whose updates started this run; every gold table on a manual run (a
        table with no new Delta version is a no-op anyway)."""
        updated = {asset.name for asset in (triggering_asset_events or {})} & set(GOLD)
        return sorted(updated) or GOLD

    @task(map_index_template="{{ task.op_kwargs['table'] }}")
    def publish_table(table: str, dag_run=None):
        from include.lakehouse.formats.publish import publish_table as publish
        from lakehouse_airflow.reports import format_publish_report

        result = publish(table, run_id=dag_run.run_id)
        for line in format_publish_report([result]):
            print(line)
        return result

    @task(outlets=[table_asset("ops/format_publish_log")], trigger_rule="all_done")
    def report_publish(results: list[dict]):
        from lakehouse_airflow.reports import published

        return published([r for r in results if r])

    report_publish(publish_table.expand(table=tables_to_publish()))


publish_formats()
