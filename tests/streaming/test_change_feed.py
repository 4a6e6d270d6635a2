"""silver/orders' change data feed as a stream into gold/customer_order_stats: the totals
always equal a plain recount of silver/orders, across a SIGKILL after the stats commit (the
batch is replayed, its app transaction makes the replay a no-op) and later runs."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pyarrow as pa
import pytest

from include.lakehouse.streaming.change_feed import STATS_TABLE, increments
from include.lakehouse.tables.delta import merge_upsert, open_table
from tests.processes import race, run_and_kill

DRIVER = "tests.streaming.drivers.run_customer_stats"
ORDERS = pa.schema([("order_id", pa.int64()), ("customer_id", pa.int64()), ("amount", pa.decimal128(12, 2)),
                    ("placed_at", pa.timestamp("us", tz="UTC")), ("_deleted", pa.bool_())])


def orders(*rows) -> pa.Table:
    at = datetime(2024, 1, 1, tzinfo=timezone.utc)
    return pa.Table.from_pylist([{"order_id": o, "customer_id": c, "amount": Decimal(a), "placed_at": at.replace(hour=o % 24),
                                  "_deleted": d} for o, c, a, d in rows], schema=ORDERS)


def write(*rows) -> None:
    merge_upsert("silver/orders", orders(*rows), keys=["order_id"], delete_when="s._deleted = true")


def recount() -> dict:
    totals: dict = {}
    for r in open_table("silver/orders").to_pyarrow_table().to_pylist():
        orders_, revenue = totals.get(r["customer_id"], (0, Decimal(0)))
        totals[r["customer_id"]] = (orders_ + 1, revenue + r["amount"])
    return totals


def stats() -> dict:
    return {r["customer_id"]: (r["orders"], r["revenue"]) for r in open_table(STATS_TABLE).to_pyarrow_table().to_pylist()
            if r["orders"]}


def test_increments_add_inserts_and_post_images_and_subtract_deletes_and_pre_images():
    changes = pa.Table.from_pylist([
        {"customer_id": 1, "amount": Decimal("10.00"), "placed_at": None, "_change_type": "insert"},
        {"customer_id": 1, "amount": Decimal("10.00"), "placed_at": None, "_change_type": "update_preimage"},
        {"customer_id": 1, "amount": Decimal("12.50"), "placed_at": None, "_change_type": "update_postimage"},
        {"customer_id": 2, "amount": Decimal("7.00"), "placed_at": None, "_change_type": "delete"},
    ])
    got = increments(changes)
    assert (got[1]["orders"], got[1]["revenue"]) == (1, Decimal("12.50"))
    assert (got[2]["orders"], got[2]["revenue"]) == (-1, Decimal("-7.00"))


@pytest.mark.slow
def test_change_feed_stream_resumes_after_a_kill_without_duplicates(lakehouse_root):
    write((1, 10, "10.00", False), (2, 10, "5.00", False), (3, 11, "7.50", False))
    write((2, 10, "6.00", False), (4, 12, "1.00", False))  # an update and an insert
    assert run_and_kill(DRIVER, failpoint="cdf.after_stats_commit", timeout=600) == -9
    [(status, first)] = race(DRIVER, [((), {})], timeout=600)
    assert status == "ok", first
    assert first["batches"] == [0]  # the killed batch replayed: its stats commit was found, not redone
    assert stats() == recount() == {10: (2, Decimal("16.00")), 11: (1, Decimal("7.50")), 12: (1, Decimal("1.00"))}

    write((3, 11, "7.50", True), (5, 11, "2.00", False))  # a delete and an insert
    [(status, second)] = race(DRIVER, [((), {})], timeout=600)
    assert status == "ok", second
    assert stats() == recount() == {10: (2, Decimal("16.00")), 11: (1, Decimal("2.00")), 12: (1, Decimal("1.00"))}
    assert open_table(STATS_TABLE).transaction_version(f"stream.{second['query_id']}") == second["batches"][-1]
