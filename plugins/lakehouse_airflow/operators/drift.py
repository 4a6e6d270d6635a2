"""DriftCheckOperator: runs the Evidently drift gate (include/lakehouse/ml/drift.py) as a task
and returns its verdict; anything but `pass` alerts on-call once (with the report path). Given
`branches`, it is also the gate's branch: it runs the task of what follows the verdict (drift.next_step:
score or retrain) and skips the others - one task, not a check and a separate decision task (each
task more on the ML loop's critical path cost a scheduler round trip, ~1 s in `make demo`)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator, BranchMixIn

from lakehouse_airflow.alerts import send_alert, task_fields
from lakehouse_airflow.lineage import LakehouseLineageMixin
from lakehouse_airflow.ui.links import DriftReportLink, MlflowRunLink


class DriftCheckOperator(LakehouseLineageMixin, BaseOperator, BranchMixIn):
    """Verdict of the drift gate for a features partition: pass | drift | no_champion | no_features.

    :param as_of_date: features partition to check (templated; default: the latest one)
    :param threshold: drift share above which scoring is blocked (default LAKEHOUSE_DRIFT_SHARE, 0.5)
    :param branches: task id to run per next step, e.g. {"score": "open_scoring_gate", "retrain":
        "request_retraining"}; the other downstream tasks are skipped (all of them when the verdict
        calls for neither). None: no branching, every downstream task runs.
    """

    template_fields = ("as_of_date",)
    operator_extra_links = (DriftReportLink(), MlflowRunLink())
    inherits_from_skipmixin = True  # the scheduler's view: this task may skip its downstream tasks

    def __init__(self, *, as_of_date: str | None = None, threshold: float | None = None,
                 branches: dict[str, str] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.as_of_date = as_of_date
        self.threshold = threshold
        self.branches = branches

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

        result = {**result, **drift(result)}
        if self.branches is not None:
            from include.lakehouse.ml.drift import next_step

            from lakehouse_airflow.defaults import run_day

            step = next_step(result, run_day(context["dag_run"]))
            # branching ends the task (it raises to tell the supervisor what to skip): the verdict
            # the next task reads goes to XCom first
            context["ti"].xcom_push(key="return_value", value=result)
            self.do_branch(context, self.branches.get(step) if step else None)
        return result
