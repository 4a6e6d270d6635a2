"""evaluate_models through Airflow (`dag.test()`): a champion whose realised AUC fell below the
floor is rolled back, a better challenger is promoted, and each move is alerted with its reason
and the task's fields; a run that moves nothing alerts nothing."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.ml.conftest import single_threaded_models  # noqa: F401 - autouse there, here too

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def registry(airflow_db, lakehouse_root, tmp_path, monkeypatch):
    """An outbox, an MLflow store and the evaluation world of tests/ml/test_evaluation.py; returns
    (register(kind) -> version, the outbox, the evaluate_models DAG)."""
    from airflow.dag_processing.dagbag import DagBag

    from tests.ml.conftest import fit_pipeline, register, write_world
    from tests.ml.test_evaluation import BEFORE_CUTOFF, IMMATURE, MATURED, TRAIN

    outbox = tmp_path / "alerts.jsonl"
    monkeypatch.setenv("LAKEHOUSE_ALERTS_FILE", str(outbox))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("LAKEHOUSE_MLFLOW_ARTIFACTS", (tmp_path / "artifacts").as_uri())
    frame, churned = write_world([TRAIN, BEFORE_CUTOFF, *MATURED, IMMATURE])[TRAIN]

    def register_model(kind: str) -> str:  # "good" learns the world's rule, "bad" its opposite
        return register(fit_pipeline(frame, churned, invert=kind == "bad"), TRAIN, frame)

    dag = DagBag(str(ROOT / "dags" / "evaluate_models.py")).get_dag("evaluate_models")
    dag.deadline = None  # dag.test() cannot finish runs with deadlines (see test_dbt_transform)
    return register_model, outbox, dag


def run_on(dag, day: str):
    run = dag.test(logical_date=datetime.fromisoformat(day).replace(tzinfo=timezone.utc))
    assert {ti.task_id: ti.state for ti in run.get_task_instances()} == {"evaluate_on_matured_labels": "success"}
    return run


def alerts(outbox: Path) -> list[dict]:
    return [json.loads(line) for line in outbox.read_text().splitlines()]


def test_a_rollback_is_alerted_with_its_reason(registry):
    from include.lakehouse.ml.evaluation import move_champion
    from include.lakehouse.ml.training import champion, mlflow_client
    from tests.ml.test_evaluation import RUN_DAY

    register_model, outbox, dag = registry
    good, bad = register_model("good"), register_model("bad")
    client = mlflow_client()
    move_champion(client, good, action="first_champion", reason="first model")
    move_champion(client, bad, action="promote", reason="setup", from_version=good)

    run_on(dag, RUN_DAY)
    assert str(champion(client).version) == good
    sent = alerts(outbox)
    assert [a["kind"] for a in sent] == ["model_decision"]
    assert sent[0]["summary"].startswith(f"rollback: champion v{bad} rolled back to v{good}: realised AUC")
    assert sent[0]["severity"] == "critical" and sent[0]["task_id"] == "evaluate_on_matured_labels"


def test_a_promotion_is_alerted_and_a_hold_is_not(registry, monkeypatch):
    from include.lakehouse.ml import settings as ml
    from include.lakehouse.ml.evaluation import move_champion
    from include.lakehouse.ml.training import champion, mlflow_client
    from tests.ml.test_evaluation import RUN_DAY

    register_model, outbox, dag = registry
    bad, good = register_model("bad"), register_model("good")
    client = mlflow_client()
    move_champion(client, bad, action="first_champion", reason="setup")
    client.set_registered_model_alias(ml.MODEL_NAME, "challenger", good)

    monkeypatch.setenv("LAKEHOUSE_MIN_LABELS", "601")  # 2 matured dates x 300 labels: not enough to decide
    run_on(dag, "2024-03-19")
    assert str(champion(client).version) == bad and not outbox.exists()  # held: nothing moved, nothing alerted

    monkeypatch.delenv("LAKEHOUSE_MIN_LABELS")
    run_on(dag, RUN_DAY)
    assert str(champion(client).version) == good
    sent = alerts(outbox)
    assert [(a["kind"], a["severity"]) for a in sent] == [("model_decision", "warning")]
    assert sent[0]["summary"].startswith(f"promote: challenger v{good} beats champion v{bad}: AUC difference +")
