"""evaluate_models through Airflow (`dag.test()`): a champion whose realised AUC fell below the
floor is rolled back, and the move is alerted with its reason and the task's fields."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path


from tests.ml.conftest import single_threaded_models  # noqa: F401 - autouse there, here too

ROOT = Path(__file__).resolve().parents[2]


def test_a_rollback_is_alerted_with_its_reason(airflow_db, lakehouse_root, tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    from include.lakehouse.ml.evaluation import move_champion
    from include.lakehouse.ml.training import champion, mlflow_client
    from tests.ml.conftest import fit_pipeline, register, write_world
    from tests.ml.test_evaluation import BEFORE_CUTOFF, IMMATURE, MATURED, RUN_DAY, TRAIN

    outbox = tmp_path / "alerts.jsonl"
    monkeypatch.setenv("LAKEHOUSE_ALERTS_FILE", str(outbox))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("LAKEHOUSE_MLFLOW_ARTIFACTS", (tmp_path / "artifacts").as_uri())
    world = write_world([TRAIN, BEFORE_CUTOFF, *MATURED, IMMATURE])
    frame, churned = world[TRAIN]
    good = register(fit_pipeline(frame, churned), TRAIN, frame)
    bad = register(fit_pipeline(frame, churned, invert=True), TRAIN, frame)
    client = mlflow_client()
    move_champion(client, good, action="promote", reason="first model")
    move_champion(client, bad, action="promote", reason="setup", from_version=good)

    dag = DagBag(str(ROOT / "dags" / "evaluate_models.py")).get_dag("evaluate_models")
    dag.deadline = None  # dag.test() cannot finish runs with deadlines (see test_dbt_transform)
    run = dag.test(logical_date=datetime.fromisoformat(RUN_DAY).replace(tzinfo=timezone.utc))
    assert {ti.task_id: ti.state for ti in run.get_task_instances()} == {"evaluate_on_matured_labels": "success"}
    assert str(champion(client).version) == good
    alerts = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert [a["kind"] for a in alerts] == ["model_decision"]
    assert alerts[0]["summary"].startswith(f"rollback: champion v{bad} rolled back to v{good}: realised AUC")
    assert alerts[0]["severity"] == "critical" and alerts[0]["task_id"] == "evaluate_on_matured_labels"


def test_a_promotion_is_alerted_and_a_hold_is_not(airflow_db, lakehouse_root, tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    from include.lakehouse.ml import settings as ml
    from include.lakehouse.ml.evaluation import move_champion
    from include.lakehouse.ml.training import champion, mlflow_client
    from tests.ml.conftest import fit_pipeline, register, write_world
    from tests.ml.test_evaluation import BEFORE_CUTOFF, IMMATURE, MATURED, RUN_DAY, TRAIN

    outbox = tmp_path / "alerts.jsonl"
    monkeypatch.setenv("LAKEHOUSE_ALERTS_FILE", str(outbox))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("LAKEHOUSE_MLFLOW_ARTIFACTS", (tmp_path / "artifacts").as_uri())
    world = write_world([TRAIN, BEFORE_CUTOFF, *MATURED, IMMATURE])
    frame, churned = world[TRAIN]
    bad = register(fit_pipeline(frame, churned, invert=True), TRAIN, frame)
    good = register(fit_pipeline(frame, churned), TRAIN, frame)
    client = mlflow_client()
    move_champion(client, bad, action="first_champion", reason="setup")
    client.set_registered_model_alias(ml.MODEL_NAME, "challenger", good)
    dag = DagBag(str(ROOT / "dags" / "evaluate_models.py")).get_dag("evaluate_models")
    dag.deadline = None

    monkeypatch.setenv("LAKEHOUSE_MIN_LABELS", "601")  # 2 matured dates x 300 labels: not enough to decide
    dag.test(logical_date=datetime.fromisoformat("2024-03-19").replace(tzinfo=timezone.utc))
    assert str(champion(client).version) == bad and not outbox.exists()  # held: nothing moved, nothing alerted

    monkeypatch.delenv("LAKEHOUSE_MIN_LABELS")
    run = dag.test(logical_date=datetime.fromisoformat(RUN_DAY).replace(tzinfo=timezone.utc))
    assert {ti.task_id: ti.state for ti in run.get_task_instances()} == {"evaluate_on_matured_labels": "success"}
    assert str(champion(client).version) == good
    alerts = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert [(a["kind"], a["severity"]) for a in alerts] == [("model_decision", "warning")]
    assert alerts[0]["summary"].startswith(f"promote: challenger v{good} beats champion v{bad}: AUC difference +")
