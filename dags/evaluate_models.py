"""
### evaluate_models

Judges the models on labels that have matured (30 days after an as-of date, covered by
silver/orders): champion and challenger rescore the features of every matured as-of date
after their training data cutoff (point in time: features at the date, labels strictly
after it) and their realised AUC, precision at top-k and calibration go to
`ops/model_evaluation`. Then one decision: promote the challenger when the bootstrap
interval of its AUC gain clears LAKEHOUSE_PROMOTION_MARGIN on at least LAKEHOUSE_MIN_LABELS
labels; otherwise roll the champion back to the previous champion when its realised AUC is
below LAKEHOUSE_AUC_FLOOR or drift_check found severe drift for LAKEHOUSE_SEVERE_DRIFT_DAYS
consecutive days. Every alias move is recorded with its reason (MLflow tags,
`ops/model_decisions`) and alerted; the drift gate checks the new champion on the next
features. Daily at 05:00 UTC and after every scoring.
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, dag, task
from airflow.timetables.trigger import CronTriggerTimetable

from lakehouse_airflow.assets import table_asset
from lakehouse_airflow.defaults import dag_args, run_day


@dag(**dag_args("evaluate_models", doc_md=__doc__, tags=["ml", "mlflow", "week:model-ops"],
                schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 5 * * *", timezone="UTC"),
                                             assets=table_asset("predictions/churn_scores"))))
def evaluate_models():
    @task(outlets=[table_asset("ops/model_evaluation"), table_asset("ops/model_decisions")])
    def evaluate_on_matured_labels(dag_run=None):
        from airflow.sdk import get_current_context

        from include.lakehouse.ml.evaluation import evaluate
        from lakehouse_airflow.alerts import send_alert, task_fields

        outcome = evaluate(run_day(dag_run))
        decision = outcome["decision"]
        if decision["action"] in ("promote", "rollback", "rollback_blocked"):  # an alias moved, or should have
            fields = task_fields(get_current_context())
            send_alert({"kind": "model_decision", "severity": "critical" if decision["action"] != "promote"
                        else "warning", **fields, "summary": f"{decision['action']}: {decision['reason']}",
                        "dedup_key": f"model_decision/{fields['run_id']}/{decision['action']}"})
        from lakehouse_airflow.reports import evaluation

        return {**outcome, **evaluation(outcome)}

    evaluate_on_matured_labels()


evaluate_models()
