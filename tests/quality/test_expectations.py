"""Great Expectations suites on real Delta tables: pass, fail, quarantine, results kept."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from include.lakehouse.quality.expectations import DataQualityError, gx_root, validate

NOW = datetime.now(timezone.utc)


def orders(amounts, statuses=None, customers=None):
    n = len(amounts)
    return pa.table({
        "order_id": pa.array(range(1, n + 1), pa.int64()),
        "customer_id": pa.array(customers or [1] * n, pa.int64()),
        "order_date": pa.array([date(2024, 1, 1)] * n, pa.date32()),
        "status": statuses or ["paid"] * n,
        "amount": pa.array([Decimal(str(a)) for a in amounts], pa.decimal128(12, 2)),
        "_source_ts": pa.array([NOW] * n, pa.timestamp("us", tz="UTC")),
    })


@pytest.fixture()
def tables(lakehouse_root):
    write_deltalake(str(lakehouse_root / "silver" / "customers"), pa.table({
        "customer_id": pa.array([1, 2], pa.int64()), "email": ["a@x.org", "b@x.org"],
        "segment": ["consumer", "corporate"]}))
    return lakehouse_root


def test_a_passing_suite_passes_and_its_results_and_docs_are_kept(tables):
    write_deltalake(str(tables / "silver" / "orders"), orders([5, 7.5, 12]))
    result = validate("silver_orders")
    assert result["success"] and result["action"] == "passed" and result["rows"] == 3 and result["version"] == 0
    assert result["evaluated"] == 7  # 4 expectations + row count + freshness + reference
    assert (gx_root() / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html").exists()
    assert list((gx_root() / "gx" / "uncommitted" / "validations").rglob("*.json"))


def test_quarantine_suite_copies_the_failing_rows_with_their_reasons(tables):
    write_deltalake(str(tables / "silver" / "orders"), orders([5, -2, 12], statuses=["paid", "paid", "lost"]))
    result = validate("silver_orders")
    assert not result["success"] and result["action"] == "quarantined" and result["rows_quarantined"] == 2
    bad = DeltaTable(result["quarantine_table"]).to_pyarrow_table().to_pylist()
    reasons = {r["order_id"]: r["_dq_reason"] for r in bad}
    assert set(reasons) == {2, 3}
    assert "expect_column_values_to_be_between(amount)" in reasons[2]
    assert "expect_column_values_to_be_in_set(status)" in reasons[3]
    validate("silver_orders")  # the same table version again: quarantined once
    assert DeltaTable(result["quarantine_table"]).count() == 2


def test_table_level_failure_fails_even_a_quarantine_suite(tables):
    write_deltalake(str(tables / "silver" / "orders"), orders([]))  # no rows at all: nothing to quarantine
    with pytest.raises(DataQualityError, match=r"expect_table_row_count_to_be_between\(None\) x"):
        validate("silver_orders")


def test_fail_suite_raises_with_a_summary(lakehouse_root):
    write_deltalake(str(lakehouse_root / "silver" / "customers"), pa.table({
        "customer_id": pa.array([1, 1], pa.int64()), "email": ["a@x.org", "not-an-email"],
        "segment": ["consumer", "consumer"]}))
    with pytest.raises(DataQualityError) as caught:
        validate("silver_customers")
    message = str(caught.value)
    assert "silver/customers v0" in message and "expect_column_values_to_be_unique(customer_id) x2" in message
    assert "expect_column_values_to_match_regex(email) x1" in message
