"""
### observe_lakehouse

The lakehouse's health, after the pipeline and once a day: for every registered table its
**freshness** (last commit vs its SLA), **volume** (rows added per day vs the trailing
history), **schema changes**, next to the latest **quality** (GX) and **drift** results, into
`ops/table_health`, `ops/table_volume`, `ops/schema_changes`. A stale table or a volume anomaly
alerts on-call once per table and day (plugins/lakehouse_airflow/alerting.yaml routes it).
SLAs and the volume rule: include/lakehouse/observability/observability.yaml. The OpenLineage
events of the runs become `ops/lineage_edges`. See them in the UI: **Lakehouse health** and
**Lineage** in the menu (or the task's "Lakehouse health" link).
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag

from lakehouse_airflow.assets import table_asset
from lakehouse_airflow.defaults import dag_args
from lakehouse_airflow.operators.observe import ObserveLakehouseOperator


@dag(**dag_args(
    "observe_lakehouse", doc_md=__doc__, tags=["ops", "week:observability"],
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 6 * * *", timezone="UTC"),
        assets=table_asset("predictions/churn_scores") | table_asset("gold/fct_daily_revenue")),
))
def observe_lakehouse():
    ObserveLakehouseOperator(task_id="observe_tables")


observe_lakehouse()
