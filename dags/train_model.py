"""
### train_model

Trains the churn model (label: no order in the 30 days after the as-of date) on the newest
features partition whose label window has passed, read at a pinned Delta version; logs
params, holdout AUC, global SHAP importance, feature/source table versions, the training data
profile and the drift reference to MLflow, and writes the version's model card. The first
model of the registry is `champion`; every later one is `challenger` only (shadow-scored by
batch_inference, promoted or not by evaluate_models on matured labels - never here). Cold
start: with no champion yet, a baseline on the window before the newest is trained first and
becomes champion, so the newest starts as challenger (LAKEHOUSE_COLD_START_BASELINE=0: off).
A new champion is announced (an `ml/customer_churn_champion` event, added through the alias
`ml/champion_announcements` only when there is one) so the drift gate checks it before it
scores.
Weekly (Monday 04:00 UTC) and whenever drift_check asks for retraining.
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, dag, task
from airflow.timetables.trigger import CronTriggerTimetable

from lakehouse_airflow.assets import CHAMPION, CHAMPION_ANNOUNCEMENTS, RETRAIN_REQUESTS
from lakehouse_airflow.defaults import dag_args, run_day


@dag(**dag_args("train_model", doc_md=__doc__, tags=["ml", "mlflow", "week:ml"],
                schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 4 * * 1", timezone="UTC"),
                                             assets=RETRAIN_REQUESTS)))
def train_model():
    @task(outlets=[CHAMPION_ANNOUNCEMENTS])
    def train_and_register(dag_run=None, outlet_events=None):
        from include.lakehouse.ml.training import NoTrainingData, train_for_run

        from lakehouse_airflow.alerts import skip_and_alert
        from lakehouse_airflow.reports import training

        try:
            outcome = train_for_run(run_day(dag_run))
        except NoTrainingData as exc:  # e.g. a weekly run on a fresh deployment: say why, skip
            skip_and_alert("training_skipped", exc)
        if outcome["new_champion"]:  # the drift gate checks a new champion before it scores
            outlet_events[CHAMPION_ANNOUNCEMENTS].add(CHAMPION, extra={"champion": outcome["champion_version"]})
        return {**outcome, **training(outcome)}

    train_and_register()


train_model()
