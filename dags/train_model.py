"""
### train_model

Trains the churn model (label: no order in the 30 days after the as-of date) on the newest
features partition whose label window has passed, read at a pinned Delta version; logs
params, holdout AUC, feature/source table versions, the training data profile and the drift
reference to MLflow; registers a version with alias `challenger` and promotes it to
`champion` only if it beats the current champion on the same holdout (the first model is
champion). A new champion is announced so the drift gate checks it before it scores.
Weekly (Monday 04:00 UTC) and whenever drift_check asks for retraining.
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, dag, task
from airflow.timetables.trigger import CronTriggerTimetable

from lakehouse_airflow.assets import CHAMPION, RETRAIN_REQUESTS
from lakehouse_airflow.defaults import dag_args, run_day


@dag(**dag_args("train_model", doc_md=__doc__, tags=["ml", "mlflow"],
                schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 4 * * 1", timezone="UTC"),
                                             assets=RETRAIN_REQUESTS)))
def train_model():
    @task
    def train_and_register(dag_run=None) -> dict:
        from include.lakehouse.ml.training import NoTrainingData, train, training_date
        from lakehouse_airflow.alerts import skip_and_alert

        from lakehouse_airflow.reports import training

        try:
            outcome = train(training_date(run_day(dag_run)))
            return {**outcome, **training(outcome)}
        except NoTrainingData as exc:  # e.g. a weekly run on a fresh deployment: say why, skip
            skip_and_alert("training_skipped", exc)

    @task.short_circuit
    def promoted(outcome: dict) -> bool:
        return bool(outcome["promoted"])

    @task(outlets=[CHAMPION])
    def announce_champion(outcome: dict) -> dict:
        return {"champion": outcome["model_version"]}

    outcome = train_and_register()
    promoted(outcome) >> announce_champion(outcome)


train_model()
