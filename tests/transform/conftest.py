"""A small shop lakehouse for the dbt project: silver tables and the customer dimension as
cdc_apply and scd2_dimensions leave them, built with the lakehouse package's own CDC flow."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from include.lakehouse.cdc.flow import apply_bronze_changes
from include.lakehouse.dimensions.build import build_dimension
from include.lakehouse.source.generator import ShopSource
from include.lakehouse.tables.delta import append

DAYS = ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]


def _bronze_rows(envelopes: list[dict], start: int) -> pa.Table:
    """Envelopes as ingest_kafka lands them in bronze (one partition, consecutive offsets)."""
    return pa.table({
        "key": [json.dumps(e["after"] or e["before"]) for e in envelopes],
        "partition": pa.array([0] * len(envelopes), pa.int32()),
        "offset": pa.array(range(start, start + len(envelopes)), pa.int64()),
        "payload": [json.dumps(e) for e in envelopes],
        "tombstone": [False] * len(envelopes),
    })


@pytest.fixture()
def shop_lakehouse(lakehouse_root, tmp_path, monkeypatch):
    """Four shop days (scale 0.05) through the real CDC path: Debezium envelopes in bronze,
    cdc_apply's silver tables, scd2_dimensions' gold/dim_customer (deletes included)."""
    shop = ShopSource(scale=0.05)
    offsets: dict[str, int] = {}
    feeds = {"customers": shop.customer_changes, "orders": shop.order_changes, "products": shop.product_changes}
    for day in DAYS:
        for table, changes in feeds.items():
            topic = f"shop.public.{table}"
            envelopes = changes(day)
            if envelopes:
                append(f"bronze/{topic}", _bronze_rows(envelopes, offsets.get(topic, 0)), app_id=f"test.{topic}.{day}")
                offsets[topic] = offsets.get(topic, 0) + len(envelopes)
            apply_bronze_changes(table)
        build_dimension("dim_customer")
    monkeypatch.setenv("DBT_DUCKDB_PATH", str(tmp_path / "dbt" / "lakehouse.duckdb"))
    return lakehouse_root


def dbt_args(tmp_path, *args: str) -> list[str]:
    """dbt CLI args that keep artifacts and logs out of include/dbt."""
    return [*args, "--target-path", str(tmp_path / "dbt-target"), "--log-path", str(tmp_path / "dbt-logs")]


def negative_amount(lakehouse_root) -> None:
    """Make one silver order's amount negative (what the non_negative test must catch)."""
    from deltalake import DeltaTable

    dt = DeltaTable(str(lakehouse_root / "silver" / "orders"))
    first = pc.min(dt.to_pyarrow_table(columns=["order_id"]).column("order_id")).as_py()
    dt.update(updates={"amount": "CAST(-5 AS DECIMAL(12,2))"}, predicate=f"order_id = {first}")
