"""ML settings in one place: model name, label window, drift threshold, MLflow locations.
Never reads a table or starts MLflow at import (DAG files import it at parse time)."""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

from include.lakehouse.config import local_dir

MODEL_NAME = os.environ.get("LAKEHOUSE_MODEL_NAME", "customer_churn")
EXPERIMENT = MODEL_NAME
LABEL_WINDOW_DAYS = 30
FEATURES_TABLE = "features/customer_features"
PREDICTIONS_TABLE = "predictions/churn_scores"
DRIFT_LOG = "ops/drift_log"
EXPLANATIONS_TABLE = "predictions/churn_explanations"
SHADOW_TABLE = "predictions/churn_shadow_scores"
EVALUATION_TABLE = "ops/model_evaluation"
DECISIONS_TABLE = "ops/model_decisions"
# recency / frequency (orders_90d) / monetary (spend_90d), rolling 7/30/90-day counts and spend
NUMERIC_FEATURES = ["recency_days", "avg_basket", "orders_7d", "orders_30d", "orders_90d",
                    "spend_7d", "spend_30d", "spend_90d", "tenure_days", "events_30d", "cancelled_share"]
CATEGORICAL_FEATURES = ["segment"]
FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES
SERVING_THRESHOLD = 0.5  # churn_predicted = probability >= this; the model card's confusion matrix uses it too


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


# --- explanations (SHAP) ---
def explain_top_k() -> int:
    """Features per customer in predictions/churn_explanations (LAKEHOUSE_EXPLAIN_TOP_K)."""
    return int(_env("LAKEHOUSE_EXPLAIN_TOP_K", "3"))


# contributions + base value must equal the model's margin (log-odds) within this, or the batch fails
ADDITIVITY_TOLERANCE = float(_env("LAKEHOUSE_SHAP_TOLERANCE", "1e-6"))


# --- evaluation on matured labels, promotion and rollback (evaluate_models) ---
def precision_top_share() -> float:
    """Precision at top-k: k is this share of the scored customers (LAKEHOUSE_PRECISION_TOP_SHARE)."""
    return float(_env("LAKEHOUSE_PRECISION_TOP_SHARE", "0.1"))


def promotion_margin() -> float:
    """The challenger is promoted when the lower bound of the bootstrap interval of its realised
    AUC minus the champion's exceeds this (LAKEHOUSE_PROMOTION_MARGIN)."""
    return float(_env("LAKEHOUSE_PROMOTION_MARGIN", "0.01"))


def min_labels() -> int:
    """Matured labels (rows) needed before any promotion or floor rollback (LAKEHOUSE_MIN_LABELS)."""
    return int(_env("LAKEHOUSE_MIN_LABELS", "200"))


def auc_floor() -> float:
    """Realised champion AUC below which it is rolled back (LAKEHOUSE_AUC_FLOOR)."""
    return float(_env("LAKEHOUSE_AUC_FLOOR", "0.6"))


def severe_drift_share() -> float:
    """A drift check with at least this drift share counts as severe (LAKEHOUSE_SEVERE_DRIFT_SHARE)."""
    return float(_env("LAKEHOUSE_SEVERE_DRIFT_SHARE", "0.7"))


def severe_drift_days() -> int:
    """Consecutive as-of days of severe drift on the champion that roll it back (LAKEHOUSE_SEVERE_DRIFT_DAYS)."""
    return int(_env("LAKEHOUSE_SEVERE_DRIFT_DAYS", "3"))


def cold_start_baseline() -> bool:
    """With no champion yet, train_model first trains a baseline champion on the window before the
    newest, so the newest model starts as a challenger (LAKEHOUSE_COLD_START_BASELINE, 1 / 0)."""
    return _env("LAKEHOUSE_COLD_START_BASELINE", "1").strip().lower() not in ("0", "false", "no", "off")


BOOTSTRAP_SAMPLES = 500
BOOTSTRAP_CONFIDENCE = 0.95
EVALUATION_LOOKBACK_DAYS = 90  # matured as-of dates older than this are not re-evaluated


def model_threads() -> int:
    """Threads for model fitting and scoring (OpenMP, BLAS) (LAKEHOUSE_ML_THREADS, default 1).
    Measured on a busy 2-core machine: training on 11k customers took 71-124 s with the default
    OpenMP pool, 6-8 s in one thread (the pool spins against the other tasks); raise it on a
    dedicated worker."""
    return max(1, int(_env("LAKEHOUSE_ML_THREADS", "1")))


def bounded_threads(fn):
    """Run `fn` with at most model_threads() threads in scikit-learn's native pools."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(model_threads()):
            return fn(*args, **kwargs)
    return wrapper


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


@contextlib.contextmanager
def store_initialisation():
    """Held while a process first opens the tracking store and creates the experiment. MLflow
    creates and migrates a SQLite store on first use; two processes doing it at once (the first
    scheduled runs of train_model and evaluate_models) leave a half-migrated database that every
    later run fails on ("table _alembic_tmp_latest_metrics already exists"). A file lock beside
    a local SQLite store serialises them; other stores (a tracking server, a database migrated
    with `mlflow db upgrade` at deployment) need none."""
    uri = tracking_uri()
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    lock = Path(uri.removeprefix("sqlite:///") + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def artifact_location() -> str:
    return os.environ.get("LAKEHOUSE_MLFLOW_ARTIFACTS") or (local_dir("mlflow") / "artifacts").as_uri()


def reports_dir(kind: str = "drift") -> Path:
    folder = local_dir("reports") / kind
    folder.mkdir(parents=True, exist_ok=True)
    return folder
