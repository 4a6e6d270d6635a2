"""
### batch_inference

Scores the newest features partition with `models:/customer_churn@champion` once the drift
gate passed: `predictions/churn_scores`, partition `as_of_date`, with `model_name`,
`model_version`, `mlflow_run_id` and `feature_table_version` on every row. A rerun of a date
replaces its rows. No champion or a feature schema that no longer matches the model's
signature fails the task (nothing written); an empty partition skips with the reason.
Every row is explained too (`predictions/churn_explanations`: top-k SHAP contributions,
additivity-checked, or the task fails and nothing is written), and a challenger, when there
is one, scores the same rows in shadow (`predictions/churn_shadow_scores`, never served;
agreement, score shift and rank correlation logged to MLflow; a failing challenger alerts).
"""

from __future__ import annotations

from airflow.sdk import dag, task

from lakehouse_airflow.assets import SCORING_GATE, table_asset
from lakehouse_airflow.defaults import dag_args
from lakehouse_airflow.operators.data_quality import DataQualityOperator


@dag(**dag_args("batch_inference", doc_md=__doc__, tags=["ml", "inference", "week:ml"],
                schedule=SCORING_GATE))
def batch_inference():
    @task(outlets=[table_asset("predictions/churn_explanations"), table_asset("predictions/churn_shadow_scores")])
    def score_latest_features():
        from include.lakehouse.ml.inference import NothingToScore, score
        from lakehouse_airflow.alerts import skip_and_alert

        try:
            result = score()
        except NothingToScore as exc:  # skip with the reason, and tell the owner
            skip_and_alert("inference_skipped", exc)
        if "error" in result["shadow"]:  # the champion served; the challenger's trouble is still news
            from airflow.sdk import get_current_context

            from lakehouse_airflow.alerts import send_alert, task_fields

            fields = task_fields(get_current_context())
            send_alert({"kind": "shadow_scoring_failed", "severity": "warning", **fields,
                        "summary": result["shadow"]["summary"], "dedup_key": f"shadow/{fields['run_id']}"})
        from lakehouse_airflow.reports import scoring

        return {**result, **scoring(result)}

    score_latest_features() >> DataQualityOperator(task_id="validate_predictions", suite="predictions_churn_scores",
                                                   outlets=[table_asset("predictions/churn_scores")])


batch_inference()
