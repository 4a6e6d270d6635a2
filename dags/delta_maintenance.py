"""
### delta_maintenance

Keeps every Delta table of the registry (`include/lakehouse/tables.yaml`) fast and cheap:
one mapped **DeltaMaintenanceOperator** task per table that exists compacts small files to the
table's target size, z-orders on its configured columns when data changed since the last
z-order, vacuums with the table's retention (168 h by default; shorter only with an
explicit, logged reason) and writes a checkpoint. Each table's before/after report goes to
`ops/maintenance_log`; `report_maintenance` prints them all. One table failing never stops
the others. Trigger with `{"dry_run": true}` to list what vacuum would remove, changing nothing.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from lakehouse_airflow.assets import table_asset
from lakehouse_airflow.defaults import dag_args
from lakehouse_airflow.operators.delta_maintenance import DeltaMaintenanceOperator


@dag(**dag_args("delta_maintenance", doc_md=__doc__, schedule="@daily", tags=["ops", "delta"],
                params={"dry_run": Param(False, type="boolean", description="only report what would change")}))
def delta_maintenance():
    @task
    def list_registered_tables() -> list[str]:
        from include.lakehouse.maintenance.policy import tables_to_maintain

        return tables_to_maintain()

    maintained = DeltaMaintenanceOperator.partial(
        task_id="maintain_table", pool="delta_maintenance",
        outlets=[table_asset("ops/maintenance_log")],
    ).expand(table=list_registered_tables())

    @task(trigger_rule="all_done")
    def report_maintenance(reports: list[dict]):
        from lakehouse_airflow.reports import maintenance

        report = maintenance([r for r in reports if r])
        for line in report["report_lines"]:
            print(line)
        return report

    report_maintenance(maintained.output)


delta_maintenance()
