"""The configuration files are validated on load: a typo fails with one line naming the file,
the key and the problem, before any table is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.lakehouse.config import SOURCES_FILE, load_sources
from include.lakehouse.errors import ConfigError
from include.lakehouse.tables.registry import REGISTRY_FILE, load_registry


def edited(tmp_path: Path, source: Path, old: str, new: str) -> str:
    text = source.read_text()
    assert old in text, f"{old!r} not in {source.name}: update the test"
    target = tmp_path / source.name
    target.write_text(text.replace(old, new, 1))
    return str(target)


def test_the_shipped_files_are_valid():
    sources = load_sources()
    assert {"files", "topics", "cdc", "dimensions"} <= set(sources)
    assert all(f"silver/{name}" in load_registry() for name in sources["cdc"])


@pytest.mark.parametrize("old, new, names", [
    ("    keys: [customer_id]\n", "    kyes: [customer_id]\n", ["cdc.customers", "kyes"]),
    ("  shop.public.products:\n    partitions: 1", "  shop.public.products:\n    partitions: zero",
     ["topics.shop.public.products.partitions"]),
    ("      amount: decimal(12,2)", "      amount: money", ["files.orders.columns", "money"]),
    ("    source: customers", "    source: clients", ["dimensions.dim_customer.source", "clients"]),
    ("    topic: shop.public.orders", "    topic: shop.public.order", ["cdc.orders.topic", "shop.public.order"]),
])
def test_a_malformed_sources_file_fails_with_one_line_naming_the_key(tmp_path, old, new, names):
    with pytest.raises(ConfigError) as error:
        load_sources(edited(tmp_path, SOURCES_FILE, old, new))
    message = str(error.value)
    assert "\n" not in message and message.startswith("sources.yaml: ")
    for name in names:
        assert name in message


@pytest.mark.parametrize("old, new, names", [
    ("  gold/dim_product:\n", "  gld/dim_product:\n", ["tables", "gld/dim_product", "<layer>/<name>"]),
    ("  silver/orders:\n    keys: [order_id]\n    change_data_feed: true", "  silver/orders:\n    keys: [order_id]\n    change_feed: true",
     ["tables.silver/orders.change_feed"]),
    ("    vacuum_retention_hours: 168", "    vacuum_retention_hours: a week", ["defaults.maintenance.vacuum_retention_hours"]),
])
def test_a_malformed_registry_fails_with_one_line_naming_the_key(tmp_path, old, new, names):
    with pytest.raises(ConfigError) as error:
        load_registry(edited(tmp_path, REGISTRY_FILE, old, new))
    message = str(error.value)
    assert "\n" not in message and message.startswith("tables.yaml: ")
    for name in names:
        assert name in message


def test_invalid_yaml_is_named(tmp_path):
    broken = tmp_path / "sources.yaml"
    broken.write_text("topics: [unclosed\n")
    with pytest.raises(ConfigError, match="sources.yaml: not valid YAML"):
        load_sources(str(broken))
