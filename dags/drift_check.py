"""
### drift_check

The gate before scoring: Evidently data drift between the champion's training reference
and the newest features partition (prediction drift too once predictions exist). The HTML
report goes to `.local/reports/drift/` and MLflow, a row to `ops/drift_log`. `pass` opens
the scoring gate (batch_inference runs); `drift` or `no_champion` alerts, blocks scoring and
asks train_model for a model (unless the champion was trained on the newest possible data,
where retraining cannot help: then it only alerts). After drift the retrained model is a
challenger: scoring stays blocked until evaluate_models promotes it on matured labels, rolls
the champion back, or on-call moves the alias. Threshold: LAKEHOUSE_DRIFT_SHARE (0.5).
Runs on new features and on a new champion.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from lakehouse_airflow.assets import CHAMPION, RETRAIN_REQUESTS, SCORING_GATE, table_asset
from lakehouse_airflow.defaults import dag_args
from lakehouse_airflow.operators.drift import DriftCheckOperator


@dag(**dag_args("drift_check", doc_md=__doc__, tags=["ml", "evidently", "week:ml"],
                schedule=table_asset("features/customer_features") | CHAMPION))
def drift_check():
    gate = DriftCheckOperator(task_id="check_feature_drift",  # and the branch: drift.next_step
                              branches={"score": "open_scoring_gate", "retrain": "request_retraining"})

    @task(outlets=[SCORING_GATE])
    def open_scoring_gate(result: dict):
        return {"as_of_date": result["as_of_date"], "model_version": result["model_version"]}

    @task(outlets=[RETRAIN_REQUESTS])
    def request_retraining(result: dict):
        return {"reason": result["verdict"], "detail": result.get("detail")}

    gate >> [open_scoring_gate(gate.output), request_retraining(gate.output)]


drift_check()
