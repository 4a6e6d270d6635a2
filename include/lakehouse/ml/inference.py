"""Batch inference: the registry's champion scores one features partition; predictions carry
the model name, version, MLflow run and feature table version; a rerun of a date replaces
its partition. Nothing is written unless every row was scored and explained (the SHAP
additivity check passed). A challenger, when there is one, scores the same rows in shadow
into predictions/churn_shadow_scores: compared, logged, never served."""

from __future__ import annotations

import time
from datetime import date, datetime, timezone
from typing import Any

import numpy as np
import pyarrow as pa

from include.lakehouse.errors import LakehouseError
from include.lakehouse.ml import settings as ml
from include.lakehouse.ml.explain import explain, top_k_rows
from include.lakehouse.tables.delta import overwrite_partition


class NothingToScore(LakehouseError):
    """The features partition is empty: nothing to score (a skip, not a failure)."""


@ml.bounded_threads
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
    explain_started = time.perf_counter()
    explanations = explain(model.get_raw_model(), frame[expected])  # raises (nothing written) unless additive
    explain_seconds = time.perf_counter() - explain_started
    explanation_rows = top_k_rows(explanations, frame[expected], frame["customer_id"], as_of, model_version.version)
    rows = pa.table({
        "customer_id": pa.array(frame["customer_id"], pa.int64()),
        "as_of_date": pa.array([date.fromisoformat(as_of)] * n, pa.date32()),
        "churn_probability": pa.array(probability, pa.float64()),
        "churn_predicted": pa.array(probability >= ml.SERVING_THRESHOLD),
        "model_name": pa.array([ml.MODEL_NAME] * n),
        "model_version": pa.array([str(model_version.version)] * n),
        "mlflow_run_id": pa.array([model_version.run_id] * n),
        "feature_table_version": pa.array([features_version] * n, pa.int64()),
        "scored_at": pa.array([datetime.now(timezone.utc)] * n, pa.timestamp("us", tz="UTC")),
    })
    shadow_started = time.perf_counter()
    shadow = _shadow_scores(client, model_version, frame, probability, as_of)
    shadow_seconds = time.perf_counter() - shadow_started
    result = overwrite_partition(ml.PREDICTIONS_TABLE, rows, partition={"as_of_date": as_of})
    overwrite_partition(ml.EXPLANATIONS_TABLE, explanation_rows, partition={"as_of_date": as_of})
    if shadow.get("rows") is not None:
        overwrite_partition(ml.SHADOW_TABLE, shadow.pop("rows"), partition={"as_of_date": as_of})
    seconds = time.perf_counter() - started - explain_seconds - shadow_seconds  # the serving path, as before
    importance = explanations.global_importance()
    figures = {"scored_per_second": round(n / seconds), "explained_per_second": round(n / max(explain_seconds, 1e-9)),
               "max_additivity_error": explanations.max_additivity_error}
    _log_run(as_of, model_version, figures, importance, shadow)
    return {**result.to_dict(), "model_name": ml.MODEL_NAME, "model_version": str(model_version.version),
            "as_of_date": as_of, "features_version": int(features_version), "customers_scored": n,
            "explanations": explanation_rows.num_rows, **figures, "global_importance": importance, "shadow": shadow}


def _shadow_scores(client, champion_version, frame, served, as_of: str) -> dict[str, Any]:
    """The challenger's scores on the rows the champion served, and how they compare. A challenger
    that cannot score is reported (and alerted by the DAG), never a reason not to serve."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from scipy.stats import spearmanr

    from include.lakehouse.ml.training import scores

    try:
        challenger = client.get_model_version_by_alias(ml.MODEL_NAME, "challenger")
    except MlflowException:
        challenger = None
    if challenger is None or str(challenger.version) == str(champion_version.version):
        return {"summary": "shadow: no challenger besides the champion, nothing scored in shadow"}
    try:
        model = mlflow.pyfunc.load_model(f"models:/{ml.MODEL_NAME}/{challenger.version}")
        shadow = scores(model, frame[model.metadata.get_input_schema().input_names()])
    except Exception as exc:
        return {"challenger_version": str(challenger.version), "error": f"{type(exc).__name__}: {exc}",
                "summary": f"shadow: challenger v{challenger.version} could not score {as_of}: {exc}"}
    n = len(frame)
    agreement = float(np.mean((shadow >= ml.SERVING_THRESHOLD) == (served >= ml.SERVING_THRESHOLD)))
    shift = float(np.mean(shadow - served))
    rank = spearmanr(shadow, served).statistic if n > 1 else float("nan")
    rows = pa.table({
        "customer_id": pa.array(frame["customer_id"], pa.int64()),
        "as_of_date": pa.array([date.fromisoformat(as_of)] * n, pa.date32()),
        "model_name": pa.array([ml.MODEL_NAME] * n),
        "shadow_model_version": pa.array([str(challenger.version)] * n),
        "champion_model_version": pa.array([str(champion_version.version)] * n),
        "shadow_probability": pa.array(shadow, pa.float64()),
        "champion_probability": pa.array(served, pa.float64()),
        "shadow_predicted": pa.array(shadow >= ml.SERVING_THRESHOLD),
        "scored_at": pa.array([datetime.now(timezone.utc)] * n, pa.timestamp("us", tz="UTC")),
    })
    metrics = {"shadow_agreement": round(agreement, 4), "shadow_score_shift": round(shift, 4),
               "shadow_rank_correlation": None if np.isnan(rank) else round(float(rank), 4)}
    return {"challenger_version": str(challenger.version), "rows": rows, "rows_scored": n, **metrics,
            "summary": f"shadow: challenger v{challenger.version} scored the same {n} rows (not served): agreement "
                       f"{agreement:.3f}, score shift {shift:+.4f}, rank correlation {metrics['shadow_rank_correlation']}"}


def _log_run(as_of: str, model_version, figures: dict, importance: dict[str, float], shadow: dict) -> None:
    """One MLflow run per scoring: throughput, the global importance of the served version, the shadow comparison."""
    import mlflow

    with mlflow.start_run(run_name=f"inference_{as_of}"):
        mlflow.set_tags({"kind": "batch_inference", "model_version": model_version.version, "as_of_date": as_of,
                         **({"shadow_model_version": shadow["challenger_version"]} if "challenger_version" in shadow
                            else {}), **({"shadow_error": shadow["error"][:500]} if "error" in shadow else {})})
        mlflow.log_metrics({**figures, **{f"shap_mean_abs.{f}": v for f, v in importance.items()},
                            **{k: shadow[k] for k in ("shadow_agreement", "shadow_score_shift",
                                                      "shadow_rank_correlation") if shadow.get(k) is not None}})
        mlflow.log_dict({"model_name": ml.MODEL_NAME, "model_version": str(model_version.version), "as_of_date": as_of,
                         "mean_abs_shap": importance}, f"explanations/global_importance_v{model_version.version}.json")
