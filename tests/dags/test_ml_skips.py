"""A fresh deployment: train_model has no features to learn from. Its task skips with the
reason and tells the owner once (a warning alert with the task's fields), through `dag.test()`."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_train_model_without_features_skips_and_warns_once(airflow_db, lakehouse_root, tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    outbox = tmp_path / "alerts.jsonl"
    monkeypatch.setenv("LAKEHOUSE_ALERTS_FILE", str(outbox))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    dag = DagBag(str(ROOT / "dags" / "train_model.py")).get_dag("train_model")
    dag.deadline = None  # dag.test() cannot finish runs with deadlines (see test_dbt_transform)
    run = dag.test()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {"train_and_register": "skipped"}
    alerts = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert len(alerts) == 1, alerts
    alert = alerts[0]
    assert alert["kind"] == "training_skipped" and alert["severity"] == "warning"
    assert "features/customer_features does not exist yet" in alert["summary"]
    assert alert["dag_id"] == "train_model" and alert["task_id"] == "train_and_register"
    assert alert["owner"] == "data-platform" and alert["run_id"] == run.run_id and alert["logical_date"]
    assert alert["dedup_key"] == f"train_model/{run.run_id}/training_skipped"


def _states(run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def test_the_drift_gate_decides_in_its_check_task_no_champion_asks_for_a_model(airflow_db, lakehouse_root, tmp_path,
                                                                              monkeypatch):
    """A fresh deployment: no champion. The check task itself is the branch (a separate `decide`
    task cost a scheduler round trip on the ML loop's critical path, twice per demo): it asks
    train_model for a model and skips scoring."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("LAKEHOUSE_ALERTS_FILE", str(tmp_path / "alerts.jsonl"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    dag = DagBag(str(ROOT / "dags" / "drift_check.py")).get_dag("drift_check")
    dag.deadline = None
    states = _states(dag.test())
    assert states == {"check_feature_drift": "success", "request_retraining": "success",
                      "open_scoring_gate": "skipped"}, states


def test_train_model_announces_a_new_champion_and_only_a_new_one(airflow_db, lakehouse_root, tmp_path, monkeypatch):
    """The CHAMPION event (drift_check checks a new champion before it scores) comes from the
    training task itself, through an asset alias, when it made a champion - not from two more
    tasks (a short-circuit and an announcement: two scheduler round trips on the critical path)."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from include.lakehouse.ml import training as ml_training
    from lakehouse_airflow.assets import CHAMPION

    monkeypatch.setenv("LAKEHOUSE_ALERTS_FILE", str(tmp_path / "alerts.jsonl"))

    def outcome(new_champion: bool) -> dict:
        trained = {"model_name": "customer_churn", "model_version": "3" if new_champion else "4",
                   "as_of_date": "2026-01-01", "holdout_auc": 0.8, "new_champion": new_champion,
                   "model_card": "card.html", "verdict": "champion" if new_champion else "challenger"}
        return {**trained, "champion_version": trained["model_version"] if new_champion else None,
                "trained": [trained], "notes": []}

    def champion_events() -> list[dict]:
        with create_session() as session:
            return [e.extra for e in session.scalars(select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                                                     .where(AssetModel.name == CHAMPION.name))]

    dag = DagBag(str(ROOT / "dags" / "train_model.py")).get_dag("train_model")
    dag.deadline = None
    before = len(champion_events())
    for new_champion in (True, False):
        monkeypatch.setattr(ml_training, "train_for_run", lambda day, new=new_champion: outcome(new))
        assert _states(dag.test()) == {"train_and_register": "success"}
    events = champion_events()[before:]
    assert len(events) == 1 and events[0].get("champion") == "3", events
