"""DriftCheckOperator: runs the Evidently drift gate (include/lakehouse/ml/drift.py) as a task
and returns its verdict; anything but `pass` alerts on-call once (with the report path)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

from lakehouse_airflow.alerts import send_alert, task_fields
from lakehouse_airflow.lineage import LakehouseLineageMixin
from lakehouse_airflow.ui.links import DriftReportLink, MlflowRunLink


class DriftCheckOperator(LakehouseLineageMixin, BaseOperator):
    """Verdict of the drift gate for a features partition: pass | drift | no_champion | no_features.

    :param as_of_date: features partition to check (templated; default: the latest one)
    :param threshold: drift share above which scoring is blocked (default LAKEHOUSE_DRIFT_SHARE, 0.5)
    """

    template_fields = ("as_of_date",)
    operator_extra_links = (DriftReportLink(), MlflowRunLink())

    def __init__(self, *, as_of_date: str | None = None, threshold: float | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.as_of_date = as_of_date
        self.threshold = threshold

    def execute(self, context) -> dict[str, Any]:
        from include.lakehouse.ml.drift import check_drift

        result = check_drift(self.as_of_date or None, self.threshold)
        self.log.info("drift gate: %s (%s)", result["verdict"], result.get("detail"))
        if result["verdict"] != "pass":
            send_alert({
                "kind": "drift_gate", "severity": "warning", **task_fields(context), "verdict": result["verdict"],
                "summary": f"churn scoring blocked: {result['verdict']} - {result.get('detail')}",
                "report_path": result.get("report_path"),
                "dedup_key": f"drift_gate/{result.get('as_of_date')}/{result.get('model_version')}/{result['verdict']}",
            })
        from lakehouse_airflow.reports import drift

        return {**result, **drift(result)}
