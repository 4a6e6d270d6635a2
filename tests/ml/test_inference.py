"""Batch inference with explanations and shadow scoring, on a real MLflow registry and real tables."""

from __future__ import annotations

import pytest
from deltalake import DeltaTable

from include.lakehouse.errors import LakehouseError
from include.lakehouse.ml import settings as ml
from tests.ml.conftest import fit_pipeline, register, write_world

TRAIN, SCORE = "2024-01-01", "2024-03-01"


def table(root, name):
    return DeltaTable(str(root / name)).to_pandas()


def test_champion_serves_explained_scores_and_the_challenger_only_shadows(mlflow_store):
    from include.lakehouse.ml import inference, training
    from include.lakehouse.ml.evaluation import move_champion

    world = write_world([TRAIN, SCORE])
    frame, churned = world[TRAIN]
    client = training.mlflow_client()
    champion = register(fit_pipeline(frame, churned), TRAIN, frame)
    move_champion(client, champion, action="promote", reason="first model")
    challenger = register(fit_pipeline(frame, churned, invert=True), TRAIN, frame)
    client.set_registered_model_alias(ml.MODEL_NAME, "challenger", challenger)

    result = inference.score(SCORE)
    served = table(mlflow_store, ml.PREDICTIONS_TABLE)
    shadow = table(mlflow_store, ml.SHADOW_TABLE)
    explanations = table(mlflow_store, ml.EXPLANATIONS_TABLE)
    assert set(served["model_version"]) == {champion} and len(served) == len(frame)  # the shadow is never served
    assert set(shadow["shadow_model_version"]) == {challenger} and set(shadow["champion_model_version"]) == {champion}
    assert len(shadow) == len(frame)
    merged = served.merge(shadow, on=["customer_id", "as_of_date"])
    assert (merged["churn_probability"] == merged["champion_probability"]).all()
    assert result["shadow"]["shadow_rank_correlation"] < 0  # the inverted model ranks the other way round
    assert 0 <= result["shadow"]["shadow_agreement"] < 0.5
    assert len(explanations) == ml.explain_top_k() * len(frame) and set(explanations["model_version"]) == {champion}
    assert (result["customers_scored"], result["explanations"], result["shadow"]["rows_scored"]) == (
        len(frame), len(explanations), len(frame))
    run = client.search_runs([client.get_experiment_by_name(ml.EXPERIMENT).experiment_id],
                             "tags.kind = 'batch_inference'")[0]
    assert run.data.tags["shadow_model_version"] == challenger
    assert run.data.metrics["shadow_rank_correlation"] == pytest.approx(result["shadow"]["shadow_rank_correlation"])
    assert "shap_mean_abs.recency_days" in run.data.metrics and run.data.metrics["explained_per_second"] > 0


def test_a_challenger_that_cannot_score_never_stops_the_champion(mlflow_store, monkeypatch):
    import mlflow

    from include.lakehouse.ml import inference, training
    from include.lakehouse.ml.evaluation import move_champion

    world = write_world([TRAIN, SCORE])
    frame, churned = world[TRAIN]
    client = training.mlflow_client()
    move_champion(client, register(fit_pipeline(frame, churned), TRAIN, frame), action="promote", reason="test")
    challenger = register(fit_pipeline(frame, churned), TRAIN, frame)
    client.set_registered_model_alias(ml.MODEL_NAME, "challenger", challenger)
    load = mlflow.pyfunc.load_model

    def load_all_but_the_challenger(uri, *args, **kwargs):
        if uri.endswith(f"/{challenger}"):
            raise LakehouseError("challenger artifacts are gone")
        return load(uri, *args, **kwargs)

    monkeypatch.setattr(mlflow.pyfunc, "load_model", load_all_but_the_challenger)
    result = inference.score(SCORE)
    assert "could not score" in result["shadow"]["summary"] and "artifacts are gone" in result["shadow"]["error"]
    assert len(table(mlflow_store, ml.PREDICTIONS_TABLE)) == len(frame)
    assert not (mlflow_store / ml.SHADOW_TABLE).exists()


def test_explanations_that_do_not_add_up_stop_the_batch_before_anything_is_written(mlflow_store, monkeypatch):
    from include.lakehouse.ml import inference, training
    from include.lakehouse.ml.evaluation import move_champion

    world = write_world([TRAIN, SCORE])
    frame, churned = world[TRAIN]
    move_champion(training.mlflow_client(), register(fit_pipeline(frame, churned), TRAIN, frame), action="promote",
                  reason="test")
    monkeypatch.setattr(ml, "ADDITIVITY_TOLERANCE", -1.0)  # no explainer can pass: the check must stop the batch
    with pytest.raises(LakehouseError, match="additivity check failed"):
        inference.score(SCORE)
    assert not (mlflow_store / ml.PREDICTIONS_TABLE).exists() and not (mlflow_store / ml.EXPLANATIONS_TABLE).exists()
