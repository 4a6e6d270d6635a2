"""A shop lakehouse with history for the ML loop: 45 days of orders in silver, the customer
dimension with daily versions, and an MLflow SQLite store, all under a temp folder."""

from __future__ import annotations

from datetime import date, timedelta

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from include.lakehouse.scd import apply_scd2
from include.lakehouse.shop import ShopSource

START = date(2024, 1, 1)
DAYS = 45
SCALE = 0.3


def day(n: int) -> str:
    return (START + timedelta(days=n)).isoformat()


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
