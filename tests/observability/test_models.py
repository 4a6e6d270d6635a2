"""The health page's models: versions with their aliases and the model card each training run
logged, read from a real MLflow store; no store yet means no models (and none is created)."""

from __future__ import annotations

from include.lakehouse.observability import models


def test_versions_aliases_and_cards_come_from_the_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert models.model_versions() == [] and not (tmp_path / "mlflow.db").exists()

    import mlflow
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # an earlier test may have set another registry URI
    experiment = client.create_experiment("cards", artifact_location=(tmp_path / "artifacts").as_uri())
    card = tmp_path / "customer_churn_v1.html"
    card.write_text("<html><h1>customer_churn v1</h1>holdout AUC 0.84</html>")
    run = client.create_run(experiment)
    client.log_artifact(run.info.run_id, str(card), artifact_path=models.CARD_ARTIFACT)
    client.create_registered_model(models.ml.MODEL_NAME)
    client.create_model_version(models.ml.MODEL_NAME, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    client.create_model_version(models.ml.MODEL_NAME, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    client.set_registered_model_alias(models.ml.MODEL_NAME, "champion", "1")

    assert [(v["version"], v["aliases"]) for v in models.model_versions()] == [("2", []), ("1", ["champion"])]
    assert "holdout AUC 0.84" in models.model_card("1")
    assert models.model_card("7") is None
