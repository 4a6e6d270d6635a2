"""Streaming metrics and their alert thresholds; the exactly-once merge the sinks rely on."""

from __future__ import annotations

import pyarrow as pa

from include.lakehouse.streaming.metrics import Thresholds, breaches
from include.lakehouse.tables.delta import merge_upsert, open_table


def batch(batch_id: int, *, p95: float | None, valid: int, late: int) -> dict:
    return {"query_name": "q", "batch_id": batch_id, "latency_p95_s": p95, "valid_events": valid, "late_events": late}


def test_breaches_name_the_batch_and_the_threshold_crossed():
    rows = [batch(0, p95=3.0, valid=100, late=1), batch(1, p95=1200.0, valid=100, late=0),
            batch(2, p95=None, valid=10, late=4), batch(3, p95=None, valid=0, late=0)]
    lines = breaches(rows, Thresholds(latency_p95_seconds=900, late_share=0.05))
    assert lines == ["q batch 1: end-to-end latency p95 1200.0 s > 900 s",
                     "q batch 2: 4 of 10 events late (40.0% > 5%)"]


def test_merge_with_app_id_is_done_once_per_batch(lakehouse_root):
    """A micro-batch replayed after a crash (same query, same batch id) changes nothing."""
    table = "gold/order_events_windows"
    first = pa.table({"window_kind": ["tumbling"], "window_start": pa.array([0], pa.timestamp("us", tz="UTC")),
                      "events": pa.array([3], pa.int64())})
    assert not merge_upsert(table, first, app_id="stream.q1", app_version=0).skipped
    replay = first.set_column(2, "events", pa.array([99], pa.int64()))  # whatever a replay would bring
    result = merge_upsert(table, replay, app_id="stream.q1", app_version=0)
    assert result.skipped
    assert open_table(table).to_pyarrow_table().column("events").to_pylist() == [3]
    later = merge_upsert(table, replay, app_id="stream.q1", app_version=1)
    assert not later.skipped and open_table(table).transaction_version("stream.q1") == 1
    assert open_table(table).to_pyarrow_table().column("events").to_pylist() == [99]

