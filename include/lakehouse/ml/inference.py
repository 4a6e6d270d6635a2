"""Batch inference: the registry's champion scores one features partition; predictions carry
the model name, version, MLflow run and feature table version; a rerun of a date replaces
its partition. Nothing is written unless every row was scored."""

from __future__ import annotations

import time
from datetime import date, datetime, timezone
from typing import Any

import pyarrow as pa

from include.lakehouse.delta import overwrite_partition
from include.lakehouse.errors import LakehouseError
from include.lakehouse.ml import settings as ml


class NothingToScore(LakehouseError):
    """The features partition is empty: nothing to score (a skip, not a failure)."""


def score(as_of: str | None = None) -> dict[str, Any]:
    import mlflow

    from include.lakehouse.ml.drift import latest_as_of
    from include.lakehouse.ml.training import champion, features_at, mlflow_client, scores

    started = time.perf_counter()
    client = mlflow_client()
    model_version = champion(client)
    if model_version is None:
        raise LakehouseError(f"no champion for model {ml.MODEL_NAME}: run train_model first (nothing was written)")
    as_of = as_of or latest_as_of()
    if as_of is None:
        raise NothingToScore(f"{ml.FEATURES_TABLE} has no partition yet")
    frame, features_version = features_at(as_of)
    if frame.empty:
        raise NothingToScore(f"features partition {as_of} is empty: nothing to score")
    # the version the alias resolved to, not the alias again: the predictions name the model that made them
    model = mlflow.pyfunc.load_model(f"models:/{ml.MODEL_NAME}/{model_version.version}")
    expected = model.metadata.get_input_schema().input_names()
    missing = [c for c in expected if c not in frame.columns]
    try:  # the signature is enforced: a feature schema the model was not trained on fails here
        if missing:
            raise ValueError(f"columns {missing} are missing")
        probability = scores(model, frame[expected])
    except Exception as exc:
        raise LakehouseError(f"features {as_of} do not match model {ml.MODEL_NAME} v{model_version.version}'s "
                             f"signature: {exc}; nothing was written") from exc
    n = len(frame)
    rows = pa.table({
        "customer_id": pa.array(frame["customer_id"], pa.int64()),
        "as_of_date": pa.array([date.fromisoformat(as_of)] * n, pa.date32()),
        "churn_probability": pa.array(probability, pa.float64()),
        "churn_predicted": pa.array(probability >= 0.5),
        "model_name": pa.array([ml.MODEL_NAME] * n),
        "model_version": pa.array([str(model_version.version)] * n),
        "mlflow_run_id": pa.array([model_version.run_id] * n),
        "feature_table_version": pa.array([features_version] * n, pa.int64()),
        "scored_at": pa.array([datetime.now(timezone.utc)] * n, pa.timestamp("us", tz="UTC")),
    })
    result = overwrite_partition(ml.PREDICTIONS_TABLE, rows, partition={"as_of_date": as_of})
    seconds = time.perf_counter() - started
    return {**result.to_dict(), "model_version": str(model_version.version), "as_of_date": as_of,
            "scored_per_second": round(n / seconds), "counts": {"customers scored": n},
            "report_lines": [f"scored {n} customers for {as_of} with {ml.MODEL_NAME} v{model_version.version} "
                             f"(features v{features_version})"]}
