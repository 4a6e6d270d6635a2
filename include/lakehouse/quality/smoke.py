"""Task logic of the smoke DAGs (lakehouse_smoke, spark_smoke): small, real, repeatable.
Never touches tables other than the smoke tables."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from include.lakehouse.maintenance.operations import read_table
from include.lakehouse.source.generator import ShopSource
from include.lakehouse.tables import delta


def _shop_day(ds: str) -> str:
    return ShopSource().day_for(ds)


def append_smoke_orders(ds: str, run_id: str | None = None) -> dict:
    orders = ShopSource(scale=0.2).orders(_shop_day(ds))
    result = delta.append("bronze/smoke_orders", orders, app_id=f"lakehouse_smoke.{ds}", app_version=1,
                          metadata={"run_id": run_id, "logical_date": ds})
    return result.to_dict()


def merge_daily_revenue(ds: str) -> dict:
    day = _shop_day(ds)
    orders = read_table("bronze/smoke_orders", filter=pc.field("order_date") == pa.scalar(pa.scalar(day).cast(pa.date32())))
    revenue = orders.group_by("order_date").aggregate([("amount", "sum"), ("order_id", "count")])
    revenue = revenue.rename_columns(["order_date", "revenue", "orders"]).select(["order_date", "orders", "revenue"])
    return delta.merge_upsert("gold/smoke_daily_revenue", revenue, update_when="s.revenue <> t.revenue OR s.orders <> t.orders").to_dict()


def check_smoke_tables(ds: str) -> dict:
    day = pa.scalar(_shop_day(ds)).cast(pa.date32())
    bronze = read_table("bronze/smoke_orders", filter=pc.field("order_date") == day)
    gold = read_table("gold/smoke_daily_revenue", filter=pc.field("order_date") == day).to_pylist()
    expected = ShopSource(scale=0.2).orders(day.as_py()).num_rows
    if bronze.num_rows != expected or not gold or gold[0]["orders"] != expected:
        raise ValueError(f"smoke check failed for {ds}: bronze has {bronze.num_rows} rows, "
                         f"gold says {gold[0]['orders'] if gold else 'nothing'}, expected {expected}")
    return {"rows_checked": bronze.num_rows, "revenue": str(gold[0]["revenue"])}
