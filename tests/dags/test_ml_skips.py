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
    assert states == {"train_and_register": "skipped", "first_champion": "skipped", "announce_champion": "skipped"}
    alerts = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert len(alerts) == 1, alerts
    alert = alerts[0]
    assert alert["kind"] == "training_skipped" and alert["severity"] == "warning"
    assert "features/customer_features does not exist yet" in alert["summary"]
    assert alert["dag_id"] == "train_model" and alert["task_id"] == "train_and_register"
    assert alert["owner"] == "data-platform" and alert["run_id"] == run.run_id and alert["logical_date"]
    assert alert["dedup_key"] == f"train_model/{run.run_id}/training_skipped"
