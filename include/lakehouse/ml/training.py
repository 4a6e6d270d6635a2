"""Training with MLflow: point-in-time labels, features at pinned Delta versions, a registered
model version and its model card. The first model of the registry becomes `champion`; every
later one becomes `challenger` only: it is shadow-scored by batch_inference and promoted (or
not) by evaluate_models on matured labels it never saw (ml/evaluation.py), never here on a
holdout of its own training window. Never serves a model and never overwrites a registered
version; report lines are the Airflow side's.
"""

from __future__ import annotations

import json
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from include.lakehouse.errors import LakehouseError
from include.lakehouse.ml import settings as ml
from include.lakehouse.ml.evaluation import move_champion, set_challenger
from include.lakehouse.ml.explain import explain
from include.lakehouse.ml.model_card import write_card
from include.lakehouse.tables.delta import open_table, try_open


class NoTrainingData(LakehouseError):
    """No features (or labels of one class only) for the training date: nothing to learn from."""


def mlflow_client():
    """MlflowClient on the project's tracking store, experiment created with its artifact root."""
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(ml.tracking_uri())
    mlflow.set_registry_uri(ml.tracking_uri())
    with ml.store_initialisation():  # one process at a time creates the store and the experiment
        if mlflow.get_experiment_by_name(ml.EXPERIMENT) is None:
            mlflow.create_experiment(ml.EXPERIMENT, artifact_location=ml.artifact_location())
    mlflow.set_experiment(ml.EXPERIMENT)
    return MlflowClient()


def champion(client=None):
    """The registry's champion ModelVersion, or None when there is none yet."""
    from mlflow.exceptions import MlflowException

    client = client or mlflow_client()
    try:
        return client.get_model_version_by_alias(ml.MODEL_NAME, "champion")
    except MlflowException:
        return None


def features_at(as_of: str, version: int | None = None) -> tuple[pd.DataFrame, int]:
    """The features partition of `as_of` at a pinned table version (default: current)."""
    dt = open_table(ml.FEATURES_TABLE, version=version)
    frame = dt.to_pyarrow_table(filters=[("as_of_date", "=", date.fromisoformat(as_of))]).to_pandas()
    return frame, dt.version()


def labels(as_of: str, customer_ids: pd.Series, orders_version: int | None = None) -> pd.Series:
    """1 = churned: no order in (as_of, as_of + LABEL_WINDOW_DAYS], from silver/orders at a version."""
    dt = open_table("silver/orders", version=orders_version)
    start = date.fromisoformat(as_of)
    orders = dt.to_pyarrow_table(columns=["customer_id", "order_date"])
    in_window = pc.and_(pc.greater(orders["order_date"], start),
                        pc.less_equal(orders["order_date"], start + timedelta(days=ml.LABEL_WINDOW_DAYS)))
    buyers = set(orders.filter(in_window)["customer_id"].to_pylist())
    return (~customer_ids.isin(buyers)).astype(int)


def label_complete(as_of: str) -> bool:
    """The label window of `as_of` has fully passed in silver/orders."""
    dt = try_open("silver/orders")
    if dt is None:
        return False
    latest = pc.max(dt.to_pyarrow_table(columns=["order_date"])["order_date"]).as_py()
    return latest is not None and latest >= date.fromisoformat(as_of) + timedelta(days=ml.LABEL_WINDOW_DAYS)


def _pipeline():
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    columns = ColumnTransformer([("segment", OneHotEncoder(handle_unknown="ignore"), ml.CATEGORICAL_FEATURES)],
                                remainder="passthrough")
    return Pipeline([("columns", columns),
                     ("model", HistGradientBoostingClassifier(max_iter=150, learning_rate=0.08, random_state=0))])


def scores(model, x: pd.DataFrame) -> np.ndarray:
    """Churn probabilities from a fitted pipeline or an MLflow pyfunc model (predict_proba)."""
    raw = model.predict_proba(x) if hasattr(model, "predict_proba") else model.predict(x)
    raw = np.asarray(raw)
    return raw[:, 1] if raw.ndim == 2 else raw


def _auc(model, x: pd.DataFrame, y: pd.Series) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, scores(model, x)))


def model_requirements() -> list[str]:
    """The serving environment, declared: MLflow's inference of it spawns a process that imports
    the model (tens of seconds) and picked up whatever the training process had loaded (pytest)."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "scikit-learn", "skops", "numpy", "pandas", "scipy")]


def _require_features() -> None:
    if try_open(ml.FEATURES_TABLE) is None:
        raise NoTrainingData(f"{ml.FEATURES_TABLE} does not exist yet: feature_build has not run")


@ml.bounded_threads
def train(as_of: str, features_version: int | None = None) -> dict[str, Any]:
    """Train on the features of `as_of` (pinned version) with point-in-time labels and register
    the model: `champion` when the registry has none yet, else `challenger`. Returns the outcome."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.model_selection import train_test_split

    _require_features()
    frame, features_version = features_at(as_of, features_version)
    if frame.empty:
        raise NoTrainingData(f"{ml.FEATURES_TABLE} has no rows for as_of_date {as_of}: run feature_build for it first")
    orders_version = int(frame["orders_version"].iloc[0])
    y = labels(as_of, frame["customer_id"], orders_version)
    if y.nunique() < 2:
        raise NoTrainingData(f"labels for {as_of} have one class only ({y.iloc[0]}): not enough history to train")
    x = frame[ml.FEATURES].astype({c: "float64" for c in ml.NUMERIC_FEATURES})
    x_train, x_hold, y_train, y_hold = train_test_split(x, y, test_size=0.25, random_state=7, stratify=y)
    model = _pipeline().fit(x_train, y_train)
    holdout_auc = _auc(model, x_hold, y_hold)
    importance = explain(model, x_hold).global_importance()  # fails here, not at scoring, if unexplainable

    client = mlflow_client()
    current = champion(client)
    with mlflow.start_run(run_name=f"train_{as_of}") as run:
        estimator = model.named_steps["model"]  # the logged parameters are the fitted model's own
        mlflow.log_params({"as_of_date": as_of, "label_window_days": ml.LABEL_WINDOW_DAYS,
                           "model": type(estimator).__name__, "max_iter": estimator.max_iter,
                           "learning_rate": estimator.learning_rate, "features": ",".join(ml.FEATURES)})
        mlflow.log_metrics({"holdout_auc": holdout_auc, "train_rows": len(x_train), "holdout_rows": len(x_hold),
                            "churn_rate": float(y.mean()), **{f"shap_mean_abs.{f}": v for f, v in importance.items()}})
        mlflow.set_tags({"features_table": ml.FEATURES_TABLE, "features_version": features_version,
                         **{f"source.{k}": str(frame[f"{k}_version"].iloc[0]) for k in ("orders", "customers", "events")}})
        with tempfile.TemporaryDirectory() as tmp:
            profile = x.describe(include="all").to_json()  # the training data profile
            (Path(tmp) / "training_profile.json").write_text(json.dumps(json.loads(profile), indent=1))
            reference = x.assign(prediction=scores(model, x))
            reference.to_parquet(Path(tmp) / "reference.parquet", index=False)  # the drift check's reference
            mlflow.log_artifacts(tmp, artifact_path="data")
        signature = infer_signature(x_train, model.predict_proba(x_train.head(50)))
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=ml.MODEL_NAME, signature=signature,
                                        input_example=x_train.head(3), pyfunc_predict_fn="predict_proba",
                                        pip_requirements=model_requirements(),
                                        # we built this model: its tree arrays are trusted when it loads
                                        skops_trusted_types=[
                                            "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"])
    version = str(info.registered_model_version)
    verdict = ("champion (first model)" if current is None else
               f"challenger (champion v{current.version} serves; evaluate_models promotes on matured labels)")
    facts = {"model": ml.MODEL_NAME, "version": version, "mlflow run": run.info.run_id,
             "estimator": type(estimator).__name__, "features as of": as_of,
             "label window": f"({as_of}, {date.fromisoformat(as_of) + timedelta(days=ml.LABEL_WINDOW_DAYS)}]",
             "features table": f"{ml.FEATURES_TABLE} v{features_version}",
             **{f"source {k}": _version_text(int(frame[f"{k}_version"].iloc[0]))
                for k in ("orders", "customers", "events")},
             "rows (train / holdout)": f"{len(x_train)} / {len(x_hold)}", "churn rate": f"{float(y.mean()):.3f}",
             "holdout AUC": f"{holdout_auc:.3f}", "registered as": verdict}
    card = write_card(client, run.info.run_id, version, facts, y_hold.to_numpy(), scores(model, x_hold), importance, x)
    if current is None:
        move_champion(client, version, action="first_champion", evidence={"holdout_auc": holdout_auc},
                      reason=f"v{version} trained on {as_of} (holdout AUC {holdout_auc:.3f}) is the first model")
    else:
        set_challenger(client, version, reason=f"v{version} trained on {as_of} (holdout AUC {holdout_auc:.3f}); "
                                               f"champion v{current.version}", evidence={"holdout_auc": holdout_auc})
    return {"model_name": ml.MODEL_NAME, "model_version": version, "run_id": run.info.run_id,
            "holdout_auc": round(holdout_auc, 4), "new_champion": current is None, "as_of_date": as_of,
            "features_version": features_version, "model_card": str(card), "global_importance": importance,
            "verdict": verdict}


def _version_text(version: int) -> str:
    return f"v{version}" if version >= 0 else "none (the table did not exist yet)"


def train_for_run(run_day: str) -> dict[str, Any]:
    """What train_model runs on `run_day`: a model on the newest window whose labels have matured.

    Cold start (no champion yet): first a baseline on the window before it, which becomes the
    champion, so the newest model starts as challenger. The champion can then be judged on
    matured labels at once (the newest window lies after its data cutoff) and the challenger
    is shadow-scored from the first scoring on. Without features for that earlier window (or
    with LAKEHOUSE_COLD_START_BASELINE=0) the newest model is the first champion."""
    _require_features()  # before MLflow: a fresh deployment's first weekly run opens no store for nothing
    newest = training_date(run_day)
    outcomes, notes = [], []
    if ml.cold_start_baseline() and champion() is None:
        baseline = training_date(newest)
        try:
            outcomes.append(train(baseline))
        except NoTrainingData as exc:
            notes.append(f"cold start: no baseline on {baseline} ({exc}); the newest model becomes the champion")
    try:
        outcomes.append(train(newest))
    except NoTrainingData as exc:
        if not outcomes:
            raise
        notes.append(f"no model on {newest} ({exc}); the baseline stays the only model")  # the champion is news
    return {**outcomes[-1], "new_champion": any(o["new_champion"] for o in outcomes),
            "champion_version": next((o["model_version"] for o in outcomes if o["new_champion"]), None),
            "trained": [{k: o[k] for k in ("model_name", "model_version", "as_of_date", "holdout_auc", "new_champion",
                                           "model_card", "verdict")} for o in outcomes],
            "notes": notes}


def training_date(run_day: str) -> str:
    """The newest as-of date whose label window has passed by `run_day`."""
    return (date.fromisoformat(run_day) - timedelta(days=ml.LABEL_WINDOW_DAYS + 1)).isoformat()


def champion_trained_on() -> str | None:
    """The as-of date the current champion was trained on (None without a champion)."""
    client = mlflow_client()
    current = champion(client)
    if current is None:
        return None
    return client.get_run(current.run_id).data.params.get("as_of_date")
