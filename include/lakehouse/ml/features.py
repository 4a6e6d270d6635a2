"""Customer features as of a date, computed in Spark, strictly point in time.

Only data at or before the end of the as-of day is used: orders placed before it, the
customer version (SCD2 `gold/dim_customer`) valid at that instant, order events before it.
A future order can never change a past feature row. Written to features/customer_features,
partition `as_of_date` (a rerun replaces its partition), with the source table versions read.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from include.lakehouse.ml.settings import FEATURES_TABLE
from include.lakehouse.tables.delta import try_open

SOURCES = {"orders": "silver/orders", "customers": "gold/dim_customer", "events": "bronze/shop.order_events"}


def source_versions() -> dict[str, int]:
    """Current versions of the sources (-1: the table does not exist yet); read once per build."""
    versions = {}
    for name, table in SOURCES.items():
        dt = try_open(table)
        versions[name] = dt.version() if dt is not None else -1
    return versions


def customer_features(orders, customers, events, as_of: date):
    """Spark DataFrame of features for every customer with a version valid at the end of `as_of`."""
    from pyspark.sql import functions as F

    end = datetime.combine(as_of + timedelta(days=1), time(), tzinfo=timezone.utc)
    end_ts, as_of_lit = F.lit(end).cast("timestamp"), F.lit(as_of).cast("date")
    # trailing windows only (7/30/90 days), so a feature means the same on any as-of date:
    # recency is capped at 91 (no order in 90 days), frequency/monetary are the 90-day ones
    past = orders.where((F.col("placed_at") < end_ts) & (F.col("order_date") > F.date_sub(as_of_lit, 90)))
    revenue = F.col("status") != F.lit("cancelled")

    def within(days: int):
        return F.col("order_date") > F.date_sub(as_of_lit, days)

    per_customer = past.groupBy("customer_id").agg(
        F.max("order_date").alias("last_order_date"),
        F.sum(F.when(F.col("status") == "cancelled", 1).otherwise(0)).cast("double").alias("cancelled"),
        *[F.sum(F.when(within(d), 1).otherwise(0)).cast("double").alias(f"orders_{d}d") for d in (7, 30, 90)],
        *[F.sum(F.when(within(d) & revenue, F.col("amount")).otherwise(0)).cast("double").alias(f"spend_{d}d")
          for d in (7, 30, 90)],
    )
    seen = customers.where(F.col("valid_from") < end_ts)
    first_seen = seen.groupBy("customer_id").agg(F.min("valid_from").alias("first_seen"))
    valid = seen.where(F.col("valid_to").isNull() | (F.col("valid_to") >= end_ts))  # the version live at `end`
    population = valid.select("customer_id", "segment").join(first_seen, "customer_id")
    if events is not None:
        parsed = events.where(F.col("payload").isNotNull()).select(
            F.from_json("payload", "customer_id long, event_time string").alias("e")).select("e.*")
        parsed = parsed.withColumn("event_time", F.to_timestamp("event_time"))
        activity = parsed.where((F.col("event_time") < end_ts) & (F.col("event_time") >= end_ts - F.expr("INTERVAL 30 DAYS"))
                                ).groupBy("customer_id").agg(F.count("*").cast("double").alias("events_30d"))
    else:
        activity = None
    out = population.join(per_customer, "customer_id", "left")
    out = out.join(activity, "customer_id", "left") if activity is not None else out.withColumn("events_30d", F.lit(0.0))
    zero = ["cancelled", "events_30d"] + [f"orders_{d}d" for d in (7, 30, 90)] + [f"spend_{d}d" for d in (7, 30, 90)]
    out = out.fillna(0.0, subset=zero)
    return out.select(
        "customer_id",
        as_of_lit.alias("as_of_date"),
        F.coalesce(F.datediff(as_of_lit, F.col("last_order_date")), F.lit(91)).cast("double").alias("recency_days"),
        F.when(F.col("orders_90d") > 0, F.col("spend_90d") / F.col("orders_90d")).otherwise(0.0).alias("avg_basket"),
        "orders_7d", "orders_30d", "orders_90d", "spend_7d", "spend_30d", "spend_90d",
        F.datediff(as_of_lit, F.to_date("first_seen")).cast("double").alias("tenure_days"),
        "events_30d",
        F.when(F.col("orders_90d") > 0, F.col("cancelled") / F.col("orders_90d")).otherwise(0.0).alias("cancelled_share"),
        "segment",
    )


def build_features(spark, as_of_dates: list[str], versions: dict[str, int] | None = None) -> dict[str, Any]:
    """Compute and write the features of each as-of date from the sources at pinned versions."""
    from pyspark.sql import functions as F

    from include.lakehouse.errors import LakehouseError
    from include.lakehouse.spark.bridge import read_delta, write_delta

    versions = versions or source_versions()
    missing = [SOURCES[n] for n in ("orders", "customers") if versions[n] < 0]
    if missing:
        raise LakehouseError(f"feature build needs {missing}: run cdc_apply and scd2_dimensions first")
    orders = read_delta(spark, SOURCES["orders"], version=versions["orders"])
    customers = read_delta(spark, SOURCES["customers"], version=versions["customers"])
    events = read_delta(spark, SOURCES["events"], version=versions["events"]) if versions["events"] >= 0 else None
    results, rows = [], 0
    for day in as_of_dates:
        frame = customer_features(orders, customers, events, date.fromisoformat(day))
        for name, version in versions.items():
            frame = frame.withColumn(f"{name}_version", F.lit(version).cast("long"))
        result = write_delta(frame, FEATURES_TABLE, mode="overwrite_partition", partition={"as_of_date": day})
        results.append(result.to_dict())
        rows += result.rows_inserted
    return {"rows_inserted": rows, "as_of_dates": as_of_dates, "source_versions": versions, "writes": results}
