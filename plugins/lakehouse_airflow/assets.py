"""Airflow Assets for lakehouse tables: one asset per registered table, named like the table.

Producers list them in `outlets`, consumers schedule on them; the URI does not depend on
LAKEHOUSE_ROOT, so lineage is the same on a laptop and in a deployment.
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias


def table_asset(name: str) -> Asset:
    """`table_asset("bronze/smoke_orders")` -> Asset lakehouse://bronze/smoke_orders."""
    return Asset(name=name, uri=f"lakehouse://{name}", group="lakehouse")


# Lists the DAG files derive from include/lakehouse/sources.yaml at parse time (one validated
# YAML read, cached): a topic, CDC table or dimension declared there flows through every DAG.
def configured_topics() -> list[str]:
    from include.lakehouse.config import load_sources

    return sorted(load_sources()["topics"])


def configured_cdc_tables() -> dict[str, str]:
    """silver table name -> the topic whose bronze table feeds it."""
    from include.lakehouse.config import load_sources

    return {name: spec["topic"] for name, spec in sorted(load_sources()["cdc"].items())}


def configured_dimensions() -> dict[str, str]:
    """gold dimension name -> the silver table it is built from."""
    from include.lakehouse.config import load_sources

    return {name: spec["source"] for name, spec in sorted(load_sources()["dimensions"].items())}


def any_of(assets: list[Asset]):
    """Schedule on any of the assets (an asset expression), e.g. any bronze topic table."""
    from functools import reduce

    return reduce(lambda a, b: a | b, assets)


# Where sources announce new data (not tables): the landing zone and the shop's Kafka topics.
LANDING_ORDERS = Asset(name="landing/orders", uri="lakehouse://landing/orders", group="landing")
KAFKA_SHOP = Asset(name="kafka/shop", uri="kafka://kafka_default/shop", group="kafka")

# The ML loop's signals (not tables): a retraining request, a new champion, an open scoring gate.
RETRAIN_REQUESTS = Asset(name="ml/retrain_requests", uri="lakehouse://ml/retrain_requests", group="ml")
CHAMPION = Asset(name="ml/customer_churn_champion", uri="lakehouse://ml/customer_churn_champion", group="ml")
SCORING_GATE = Asset(name="ml/churn_scoring_gate", uri="lakehouse://ml/churn_scoring_gate", group="ml")
# A task that only sometimes makes a new champion announces it through this alias (an outlet
# emits an event on every success; an alias only when the task adds one): no extra tasks to decide
CHAMPION_ANNOUNCEMENTS = AssetAlias(name="ml/champion_announcements", group="ml")


def registered_tables(layer: str) -> list[str]:
    """Registered tables of one layer (tables.yaml), e.g. every gold table for publish_formats."""
    from include.lakehouse.tables.registry import load_registry

    return sorted(name for name, spec in load_registry().items() if spec.layer == layer)
