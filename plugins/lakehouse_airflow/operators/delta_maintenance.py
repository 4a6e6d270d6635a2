"""DeltaMaintenanceOperator: apply one registered table's maintenance policy as a task.

Compaction, z-order (when due), vacuum with the table's retention and checkpoint, via
include.lakehouse.maintenance.policy; the before/after report goes to XCom and to
ops/maintenance_log. A failure is logged there too (with the error) before the task fails,
and, mapped per table, never stops the other tables. Rows are kept once per try, so a retry
that succeeds is logged next to the failed try.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

from lakehouse_airflow.lineage import LakehouseLineageMixin
from lakehouse_airflow.ui.links import TablePageLink


class DeltaMaintenanceOperator(LakehouseLineageMixin, BaseOperator):
    template_fields = ("table", "vacuum_override_reason")
    ui_color = "#9ecae1"
    operator_extra_links = (TablePageLink(),)

    def lineage_tables(self) -> tuple[list[str], list[str]]:
        return [], [self.table]  # compaction and vacuum rewrite the table's files

    def __init__(self, *, table: str, dry_run: bool | None = None, vacuum_override_reason: str | None = None,
                 retention_hours: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table = table
        self.dry_run = dry_run
        self.vacuum_override_reason = vacuum_override_reason
        self.retention_hours = retention_hours

    def execute(self, context) -> dict[str, Any]:
        from include.lakehouse.maintenance.policy import apply_policy, log_maintenance
        from lakehouse_airflow.reports import format_maintenance_report

        run_id = context["run_id"] if context else None
        ti = context.get("ti") if context else None
        try_number = getattr(ti, "try_number", None)  # a retry's row stands next to the failed try's
        if self.dry_run is None:  # not set on the task: the run's `dry_run` param decides
            self.dry_run = bool((context.get("params") or {}).get("dry_run", False)) if context else False
        try:
            report = apply_policy(self.table, dry_run=self.dry_run, retention_hours=self.retention_hours,
                                  vacuum_override_reason=self.vacuum_override_reason)
        except Exception as exc:
            log_maintenance([{"table_name": self.table, "operation": "maintenance", "status": "failed",
                              "dry_run": self.dry_run, "detail": str(exc)[:2000]}], run_id=run_id, try_number=try_number)
            raise
        if report["status"] != "skipped":
            log_maintenance([report], run_id=run_id, try_number=try_number)
        for line in format_maintenance_report([report]):
            self.log.info("%s", line)
        return report
