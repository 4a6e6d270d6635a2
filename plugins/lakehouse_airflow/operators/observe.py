"""ObserveLakehouseOperator: one observation of every registered table (freshness, volume,
schema; include/lakehouse/observability/health.py) into ops/ tables, alerting a stale table
or a volume anomaly once per table and day through the alert routing; then folds the new
OpenLineage events into ops/lineage_edges for the Lineage page."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

from lakehouse_airflow.alerts import send_alert, task_fields
from lakehouse_airflow.lineage import LakehouseLineageMixin
from lakehouse_airflow.ui.links import HealthPageLink


def lineage_log_path() -> str | None:
    """The log file of the configured OpenLineage file transport ([openlineage] transport, or
    the file member of a composite transport); None when lineage goes elsewhere only."""
    from airflow.providers.openlineage import conf

    transport = conf.transport() or {}
    members = transport.get("transports") or []
    candidates = [transport, *(members.values() if isinstance(members, dict) else members)]
    return next((c.get("log_file_path") for c in candidates if c.get("type") == "file"), None)


class ObserveLakehouseOperator(LakehouseLineageMixin, BaseOperator):
    ui_color = "#c7e9c0"
    operator_extra_links = (HealthPageLink(),)

    def lineage_tables(self) -> tuple[list[str], list[str]]:
        """It reads every table to observe it: its lineage names only the ops/ tables it writes."""
        from include.lakehouse.observability import health, lineage

        return [], [health.HEALTH, health.VOLUME, health.SCHEMA_CHANGES, health.ALERTS, health.DAG_HEALTH,
                    lineage.EDGES]

    def execute(self, context) -> dict[str, Any]:
        from include.lakehouse.observability.health import observe
        from include.lakehouse.observability.lineage import record_lineage
        from include.lakehouse.observability.runs import summarise
        from include.lakehouse.observability.touched import reset

        result = observe()
        dags = summarise()
        result["report_lines"].append(f"run health of {len(dags)} DAGs: {sum(d['failed'] for d in dags)} failed runs, "
                                      f"{sum(d['deadline_misses'] for d in dags)} deadline misses in 7 days")
        for alert in result["alerts"]:
            send_alert({**task_fields(context), "kind": alert["kind"], "severity": "warning", "table": alert["table"],
                        "summary": alert["summary"], "dedup_key": alert["dedup_key"]})
        path = lineage_log_path()
        lineage = record_lineage(path) if path else {"report_lines": ["lineage: no file transport configured"]}
        reset()  # not an edge from every table into ops/: see lineage_tables
        for line in result["report_lines"] + lineage["report_lines"]:
            self.log.info("%s", line)
        return {**result, "lineage": {k: v for k, v in lineage.items() if k != "report_lines"},
                "report_lines": result["report_lines"] + lineage["report_lines"]}
