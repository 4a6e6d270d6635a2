"""A shop lakehouse with history for the ML loop: 45 days of orders in silver, the customer
dimension with daily versions, and an MLflow SQLite store, all under a temp folder."""

from __future__ import annotations

from datetime import date, timedelta

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from include.lakehouse.dimensions.scd2 import apply_scd2
from include.lakehouse.source.generator import ShopSource

START = date(2024, 1, 1)
DAYS = 45
SCALE = 0.3


def day(n: int) -> str:
    return (START + timedelta(days=n)).isoformat()


@pytest.fixture(autouse=True)
def single_threaded_models():
    """Models on test-sized data in one thread: OpenMP's pool on a busy 2-core machine made one
    HistGradientBoosting training 5-7x slower (measured: 16-23 s vs 3 s under load)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="session")
def spark():
    from include.lakehouse.spark.session import get_spark

    session = get_spark("test_ml", master="local[2]")
    yield session


@pytest.fixture()
def ml_lakehouse(lakehouse_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("LAKEHOUSE_MLFLOW_ARTIFACTS", (tmp_path / "artifacts").as_uri())
    shop = ShopSource(scale=SCALE)
    orders = pa.concat_tables([shop.orders(day(n)) for n in range(DAYS)])
    write_deltalake(str(lakehouse_root / "silver" / "orders"), orders)
    dim = str(lakehouse_root / "gold" / "dim_customer")
    for n in range(0, DAYS, 5):  # the customer dimension as scd2_dimensions keeps it
        apply_scd2(dim, shop.customers(day(n)), keys=["customer_id"], tracked=["city", "country", "segment", "email"],
                   type1=["name"], effective_column="updated_at", surrogate_key="customer_sk")
    return lakehouse_root


# --- synthetic features and labels: fast (no Spark), for explanations, shadow scoring, evaluation ---
SYNTHETIC_CUSTOMERS = 300


def synthetic_features(as_of: str, seed: int = 0, n: int = SYNTHETIC_CUSTOMERS, first_id: int = 1):
    """Features of `n` customers as of a date (the features table's columns); churn is likely when
    recency is high and activity low, so a model learns something real."""
    import numpy as np
    import pandas as pd

    from include.lakehouse.ml import settings as ml

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"customer_id": np.arange(first_id, first_id + n, dtype="int64"),
                          "as_of_date": date.fromisoformat(as_of)})
    for column in ml.NUMERIC_FEATURES:
        frame[column] = rng.gamma(2.0, 10.0, n).round(2)
    frame["recency_days"] = rng.integers(0, 92, n).astype("float64")
    frame["segment"] = rng.choice(["consumer", "corporate", "home_office"], n)
    return frame


def true_churn(frame, seed: int = 1):
    """The ground truth the synthetic world follows: churn odds rise with recency."""
    import numpy as np

    rng = np.random.default_rng(seed)
    logit = (frame["recency_days"].to_numpy() - 45) / 12 - (frame["events_30d"].to_numpy() - 20) / 20
    return (rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(int)


def write_world(as_of_dates: list[str], churned_by_date: dict | None = None, seed: int = 0) -> dict:
    """Write silver/orders (an order 10 days after the as-of date for every customer who stays, plus
    orders on the as-of day itself and 31 days later that must never count as labels) and then the
    features partitions (recording the orders version, as feature_build does). Returns
    as-of date -> (features frame, churn labels)."""
    import numpy as np
    import pyarrow as pa

    from include.lakehouse.ml import settings as ml
    from include.lakehouse.tables.delta import append, open_table, overwrite_partition

    world, orders = {}, []
    for i, as_of in enumerate(as_of_dates):
        # customers of different dates are different people: label windows of nearby dates overlap
        frame = synthetic_features(as_of, seed=seed + i, first_id=1 + 100_000 * i)
        churned = (churned_by_date or {}).get(as_of)
        churned = true_churn(frame, seed=seed + 100 + i) if churned is None else np.asarray(churned)
        start = date.fromisoformat(as_of)
        for customer, gone in zip(frame["customer_id"], churned):
            orders.append({"customer_id": int(customer), "order_date": start})  # as-of day: not a label
            orders.append({"customer_id": int(customer), "order_date": start + timedelta(days=31)})  # too late
            if not gone:
                orders.append({"customer_id": int(customer), "order_date": start + timedelta(days=10)})
        world[as_of] = (frame, churned)
    rows = pa.Table.from_pylist([{"order_id": n, **o} for n, o in enumerate(orders)], schema=pa.schema(
        [("order_id", pa.int64()), ("customer_id", pa.int64()), ("order_date", pa.date32())]))
    append("silver/orders", rows)
    orders_version = open_table("silver/orders").version()
    for as_of, (frame, _) in world.items():
        table = pa.Table.from_pandas(frame.assign(orders_version=orders_version, customers_version=0,
                                                  events_version=-1), preserve_index=False)
        overwrite_partition(ml.FEATURES_TABLE, table, partition={"as_of_date": as_of})
    return world


@pytest.fixture()
def mlflow_store(lakehouse_root, tmp_path, monkeypatch):
    """An empty MLflow registry (SQLite) and lakehouse under a temp folder."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("LAKEHOUSE_MLFLOW_ARTIFACTS", (tmp_path / "artifacts").as_uri())
    return lakehouse_root


def fit_pipeline(frame, churned, *, invert: bool = False):
    """The project's churn pipeline fitted on a synthetic frame (`invert`: learn the opposite, a bad model)."""
    import numpy as np

    from include.lakehouse.ml import settings as ml
    from include.lakehouse.ml.training import _pipeline

    y = 1 - np.asarray(churned) if invert else np.asarray(churned)
    return _pipeline().set_params(model__max_iter=30).fit(frame[ml.FEATURES], y)  # small: tests stay fast


def register(pipeline, trained_as_of: str, frame) -> str:
    """Log and register a fitted pipeline as training does (signature, as_of_date param), without
    the slow pip requirement inference; returns the new version."""
    import mlflow
    from mlflow.models import infer_signature

    from include.lakehouse.ml import settings as ml
    from include.lakehouse.ml.training import mlflow_client

    mlflow_client()
    x = frame[ml.FEATURES]
    with mlflow.start_run():
        mlflow.log_param("as_of_date", trained_as_of)
        info = mlflow.sklearn.log_model(
            pipeline, name="model", registered_model_name=ml.MODEL_NAME, pip_requirements=["scikit-learn"],
            signature=infer_signature(x, pipeline.predict_proba(x.head(5))), pyfunc_predict_fn="predict_proba",
            skops_trusted_types=["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"])
    return str(info.registered_model_version)
