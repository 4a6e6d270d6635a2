"""Where the Iceberg catalog is: a SQL catalog on SQLite next to a local lakehouse by default,
any pyiceberg catalog (REST, Glue, Unity's Iceberg REST) by LAKEHOUSE_ICEBERG_CATALOG, and a
clear error for a remote lakehouse without one."""

from __future__ import annotations

import pytest

from include.lakehouse.errors import LakehouseError
from include.lakehouse.formats import iceberg


def test_catalog_is_configuration(lakehouse_root, monkeypatch):
    local = iceberg.catalog_properties()
    assert local["type"] == "sql" and local["uri"] == f"sqlite:///{lakehouse_root}/warehouse/catalog.db"
    monkeypatch.setenv("LAKEHOUSE_ICEBERG_CATALOG", '{"type": "rest", "uri": "http://catalog:8181", "warehouse": "lh"}')
    assert iceberg.catalog_properties() == {"type": "rest", "uri": "http://catalog:8181", "warehouse": "lh"}
    monkeypatch.delenv("LAKEHOUSE_ICEBERG_CATALOG")
    monkeypatch.setenv("LAKEHOUSE_ROOT", "s3://bucket/lakehouse")
    with pytest.raises(LakehouseError, match="set LAKEHOUSE_ICEBERG_CATALOG"):
        iceberg.catalog_properties()
    assert iceberg.identifier("bronze/shop.public.orders") == ("bronze", "shop_public_orders")
