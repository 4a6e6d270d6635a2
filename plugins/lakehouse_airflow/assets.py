"""Airflow Assets for lakehouse tables: one asset per registered table, named like the table.

Producers list them in `outlets`, consumers schedule on them; the URI does not depend on
LAKEHOUSE_ROOT, so lineage is the same on a laptop and in a deployment.
"""

from __future__ import annotations

from airflow.sdk import Asset


def table_asset(name: str) -> Asset:
    """`table_asset("bronze/smoke_orders")` -> Asset lakehouse://bronze/smoke_orders."""
    return Asset(name=name, uri=f"lakehouse://{name}", group="lakehouse")


# Where sources announce new data (not tables): the landing zone and the shop's Kafka topics.
LANDING_ORDERS = Asset(name="landing/orders", uri="lakehouse://landing/orders", group="landing")
KAFKA_SHOP = Asset(name="kafka/shop", uri="kafka://kafka_default/shop", group="kafka")

# The ML loop's signals (not tables): a retraining request, a new champion, an open scoring gate.
RETRAIN_REQUESTS = Asset(name="ml/retrain_requests", uri="lakehouse://ml/retrain_requests", group="ml")
CHAMPION = Asset(name="ml/customer_churn_champion", uri="lakehouse://ml/customer_churn_champion", group="ml")
SCORING_GATE = Asset(name="ml/churn_scoring_gate", uri="lakehouse://ml/churn_scoring_gate", group="ml")
