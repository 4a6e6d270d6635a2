"""Landing files into bronze: once per file, schema evolution, quarantine with reasons."""

from __future__ import annotations

import json
import os

from deltalake import DeltaTable

from include.lakehouse.ingest.files import ingest_new_files, landing_dir, new_files
from include.lakehouse.shop import ShopSource


def bronze(root):
    return DeltaTable(str(root / "bronze" / "orders")).to_pyarrow_table()


def quarantine(root):
    return DeltaTable(str(root / "quarantine" / "orders")).to_pyarrow_table().to_pylist()


def test_each_format_loads_good_rows_and_quarantines_bad_ones_with_reasons(lakehouse_root):
    shop = ShopSource(scale=0.2)
    total_bad = total = 0
    for day, fmt in [("2024-01-02", "csv"), ("2024-01-03", "json"), ("2024-01-04", "parquet")]:
        _, bad = shop.write_landing_file(landing_dir("orders"), day, fmt, malformed_share=0.05)
        total_bad += bad
        total += shop.orders(day).num_rows
    results = ingest_new_files("orders")
    assert len(results) == 3
    assert bronze(lakehouse_root).num_rows == total - total_bad
    rows = quarantine(lakehouse_root)
    assert len(rows) == total_bad
    reasons = " ".join(r["_reason"] for r in rows)
    for expected in ["is not a valid", "required value missing", "unparseable JSON", "must not be negative"]:
        assert expected in reasons
    assert all(r["_raw"] and r["_source_file"] for r in rows)


def test_same_file_twice_loads_once_and_a_reupload_is_a_new_file(lakehouse_root):
    shop = ShopSource(scale=0.1)
    path, _ = shop.write_landing_file(landing_dir("orders"), "2024-01-02", "csv", malformed_share=0)
    ingest_new_files("orders")
    assert new_files("orders") == [] and ingest_new_files("orders") == []
    rows = bronze(lakehouse_root).num_rows
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 60))  # same name, uploaded again
    assert new_files("orders") == [path]
    ingest_new_files("orders")
    assert bronze(lakehouse_root).num_rows == 2 * rows


def test_a_new_column_evolves_the_bronze_schema(lakehouse_root):
    folder = landing_dir("orders")
    folder.mkdir(parents=True)
    row = {"order_id": 1, "customer_id": 2, "order_date": "2024-01-02", "placed_at": "2024-01-02T10:00:00+00:00",
           "status": "paid", "amount": "10.50", "currency": "EUR", "items": 1}
    (folder / "a.jsonl").write_text(json.dumps(row) + "\n")
    ingest_new_files("orders")
    (folder / "b.jsonl").write_text(json.dumps({**row, "order_id": 2, "coupon": "XMAS"}) + "\n")
    ingest_new_files("orders")
    table = bronze(lakehouse_root).sort_by("order_id").to_pylist()
    assert [r["coupon"] for r in table] == [None, "XMAS"]
    assert {r["_source_file"] for r in table} == {"a.jsonl", "b.jsonl"}


def test_missing_landing_folder_names_it(lakehouse_root):
    import pytest

    from include.lakehouse.errors import LakehouseError

    with pytest.raises(LakehouseError, match=r"landing/orders.*does not exist"):
        new_files("orders")
    with pytest.raises(LakehouseError, match="unknown landing source 'ordrs'"):
        ingest_new_files("ordrs")
