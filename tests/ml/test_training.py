"""Training never promotes: the first model of the registry is champion, every later one only
challenger, however well it does on its own holdout (evaluate_models decides on matured labels).
A cold start trains a baseline champion on the window before the newest, so the newest model
starts as challenger. Real MLflow registry, real tables (the synthetic world of conftest)."""

from __future__ import annotations

import pytest
from deltalake import DeltaTable
from lakehouse_airflow.reports import training as training_report

from include.lakehouse.ml import settings as ml
from tests.ml.conftest import fit_pipeline, register, write_world

BASELINE, NEWEST, RUN_DAY = "2024-01-01", "2024-02-01", "2024-03-03"  # RUN_DAY - 31 = NEWEST, NEWEST - 31 = BASELINE


def decisions(root):
    return DeltaTable(str(root / ml.DECISIONS_TABLE)).to_pandas().sort_values("decided_at", ignore_index=True)


def alias(client, name):
    return str(client.get_model_version_by_alias(ml.MODEL_NAME, name).version)


def test_a_later_model_is_challenger_only_even_when_it_beats_the_champion_on_its_holdout(mlflow_store):
    from include.lakehouse.ml import training
    from include.lakehouse.ml.evaluation import move_champion

    frame, churned = write_world([NEWEST])[NEWEST]
    client = training.mlflow_client()
    bad = register(fit_pipeline(frame, churned, invert=True), NEWEST, frame)  # learnt the opposite of the world
    move_champion(client, bad, action="first_champion", reason="test setup")

    first = training.train(NEWEST)
    assert first["holdout_auc"] > 0.75 and not first["new_champion"]  # far better than the inverted champion
    assert (alias(client, "champion"), alias(client, "challenger")) == (bad, first["model_version"])
    second = training.train(NEWEST)  # a newer challenger replaces the older one
    assert (alias(client, "champion"), alias(client, "challenger")) == (bad, second["model_version"])
    assert second["verdict"].startswith("challenger (champion v1 serves; evaluate_models promotes")
    moves = decisions(mlflow_store)
    assert list(moves["action"]) == ["first_champion", "challenger", "challenger"]
    assert list(moves["to_version"]) == [bad, first["model_version"], second["model_version"]]
    assert moves["from_version"].iloc[-1] == first["model_version"]
    tags = client.get_model_version(ml.MODEL_NAME, second["model_version"]).tags
    assert tags["challenger.reason"] == moves["reason"].iloc[-1] and f"champion v{bad}" in tags["challenger.reason"]
    assert client.get_model_version(ml.MODEL_NAME, first["model_version"]).tags["challenger.superseded_by"].startswith(
        f"v{second['model_version']} at ")
    run = client.get_run(first["run_id"])  # what was learnt from, recorded
    assert run.data.metrics["holdout_auc"] == pytest.approx(first["holdout_auc"], abs=1e-4)
    assert run.data.params["as_of_date"] == NEWEST and run.data.tags["features_version"] == str(first["features_version"])
    assert {a.path for a in client.list_artifacts(first["run_id"], "data")} == {
        "data/reference.parquet", "data/training_profile.json"}


def test_a_cold_start_trains_a_baseline_champion_and_the_newest_model_as_challenger(mlflow_store):
    from include.lakehouse.ml import training

    write_world([BASELINE, NEWEST])
    outcome = training.train_for_run(RUN_DAY)
    assert [(t["model_version"], t["as_of_date"], t["new_champion"]) for t in outcome["trained"]] == [
        ("1", BASELINE, True), ("2", NEWEST, False)]
    assert (outcome["model_version"], outcome["champion_version"], outcome["new_champion"]) == ("2", "1", True)
    report = training_report(outcome)  # what train_model's task returns for `make demo`
    assert report["counts"] == {"models trained": 2, "model cards": 2, "challengers": 1}
    assert [line.split(" -> ")[1].split(" (")[0] for line in report["report_lines"]] == ["champion", "challenger"]
    client = training.mlflow_client()
    assert (alias(client, "champion"), alias(client, "challenger")) == ("1", "2")
    assert list(decisions(mlflow_store)["action"]) == ["first_champion", "challenger"]

    again = training.train_for_run(RUN_DAY)  # a champion exists: the newest window only, as challenger
    assert [(t["model_version"], t["as_of_date"], t["new_champion"]) for t in again["trained"]] == [
        ("3", NEWEST, False)]
    assert not again["new_champion"] and again["champion_version"] is None
    assert (alias(client, "champion"), alias(client, "challenger")) == ("1", "3")


def test_a_cold_start_whose_newest_window_has_no_features_still_announces_the_baseline_champion(mlflow_store):
    from include.lakehouse.ml import training

    write_world([BASELINE])
    outcome = training.train_for_run(RUN_DAY)
    assert [(t["model_version"], t["as_of_date"]) for t in outcome["trained"]] == [("1", BASELINE)]
    assert outcome["new_champion"] and outcome["champion_version"] == "1"
    assert outcome["notes"][0].startswith(f"no model on {NEWEST} (features/customer_features has no rows")


def _open_store(tracking_uri: str, artifacts: str, start_at: float) -> str:
    """In a fresh process: wait for the common start, then open the project's MLflow client."""
    import os
    import time

    os.environ.update({"MLFLOW_TRACKING_URI": tracking_uri, "LAKEHOUSE_MLFLOW_ARTIFACTS": artifacts})
    from include.lakehouse.ml import training

    time.sleep(max(0.0, start_at - time.time()))
    return training.mlflow_client().get_experiment_by_name(ml.EXPERIMENT).experiment_id


def test_processes_opening_a_new_local_store_at_once_all_succeed_on_one_experiment(tmp_path):
    """The demo's first scheduled train_model and evaluate_models runs created the SQLite store at
    the same moment: a half-migrated database ("_alembic_tmp_latest_metrics already exists")
    failed every later MLflow task. Real processes, started together on a fresh store."""
    import multiprocessing
    import time

    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    (tmp_path / "mlflow").mkdir()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        start_at = time.time() + 8  # every worker has imported MLflow by then
        ids = pool.starmap(_open_store, [(uri, (tmp_path / "artifacts").as_uri(), start_at)] * 4)
    assert len(set(ids)) == 1
    with ctx.Pool(1) as pool:  # the store is whole: a later process opens it without migrating anything
        assert pool.apply(_open_store, (uri, (tmp_path / "artifacts").as_uri(), 0)) == ids[0]


def test_a_weekly_run_before_any_features_says_so_without_opening_mlflow(lakehouse_root, tmp_path, monkeypatch):
    """train_model's first scheduled run on a fresh deployment (the demo unpauses it first of all):
    no features yet -> NoTrainingData, and MLflow's store is not created and migrated for nothing
    (seconds of CPU beside the pipeline's first runs)."""
    from include.lakehouse.ml.training import NoTrainingData, train_for_run

    store = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    with pytest.raises(NoTrainingData, match="does not exist yet: feature_build has not run"):
        train_for_run("2026-03-01")
    assert not store.exists()
