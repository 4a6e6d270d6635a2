"""ML settings in one place: model name, label window, drift threshold, MLflow locations."""

from __future__ import annotations

import os
from pathlib import Path

from include.lakehouse.config import local_dir

MODEL_NAME = os.environ.get("LAKEHOUSE_MODEL_NAME", "customer_churn")
EXPERIMENT = MODEL_NAME
LABEL_WINDOW_DAYS = 30
FEATURES_TABLE = "features/customer_features"
PREDICTIONS_TABLE = "predictions/churn_scores"
DRIFT_LOG = "ops/drift_log"
# recency / frequency (orders_90d) / monetary (spend_90d), rolling 7/30/90-day counts and spend
NUMERIC_FEATURES = ["recency_days", "avg_basket", "orders_7d", "orders_30d", "orders_90d",
                    "spend_7d", "spend_30d", "spend_90d", "tenure_days", "events_30d", "cancelled_share"]
CATEGORICAL_FEATURES = ["segment"]
FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES


def drift_share_threshold() -> float:
    """Share of drifted feature columns above which scoring is blocked (LAKEHOUSE_DRIFT_SHARE)."""
    return float(os.environ.get("LAKEHOUSE_DRIFT_SHARE", "0.5"))


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, else a SQLite backend store under the local state folder."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    folder = local_dir("mlflow")
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def artifact_location() -> str:
    return os.environ.get("LAKEHOUSE_MLFLOW_ARTIFACTS") or (local_dir("mlflow") / "artifacts").as_uri()


def reports_dir() -> Path:
    folder = local_dir("reports") / "drift"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
