"""The GX suite of gold/order_events_windows passes on sound windows and names what is wrong."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
import pytest

from include.lakehouse.quality.expectations import DataQualityError, validate
from include.lakehouse.tables.delta import append

T0 = datetime(2024, 1, 1, 10, tzinfo=timezone.utc)


def windows(*rows) -> pa.Table:
    return pa.Table.from_pylist([
        {"window_kind": kind, "window_start": T0 + timedelta(minutes=start), "window_end": T0 + timedelta(minutes=end),
         "events": events, "revenue": Decimal("10.00") * events, "distinct_customers": min(events, 3),
         "orders_placed": events, "last_event_time": T0 + timedelta(minutes=start)}
        for kind, start, end, events in rows])


def test_suite_passes_on_sound_windows(lakehouse_root):
    append("gold/order_events_windows", windows(("tumbling", 0, 10, 4), ("sliding", -5, 5, 2), ("sliding", 0, 10, 4)))
    assert validate("gold_order_events_windows")["success"]


def test_suite_fails_on_an_inverted_window_and_an_unknown_kind(lakehouse_root):
    append("gold/order_events_windows", windows(("tumbling", 10, 0, 4), ("hopping", 0, 10, 1)))
    with pytest.raises(DataQualityError) as failed:
        validate("gold_order_events_windows")
    text = str(failed.value.result["failed"])
    assert "expect_column_values_to_be_in_set" in text and "expect_column_pair_values_a_to_be_greater_than_b" in text
