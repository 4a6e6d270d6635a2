"""The order-events stream on the embedded broker and real Delta tables: exactly once when the
driver is SIGKILLed mid-batch and restarted from its checkpoint, and late events kept out of
closed windows but never lost. Spark runs in child processes (tests/streaming/drivers.py)."""

from __future__ import annotations

from collections import Counter

import pytest

from include.lakehouse.streaming.order_events import LATE_TABLE, QUARANTINE_TABLE, WINDOWS_TABLE
from include.lakehouse.tables.delta import open_table, try_open
from tests.processes import race, run_and_kill
from tests.streaming.drivers import event, produce

pytestmark = pytest.mark.slow
DRIVER = "tests.streaming.drivers.run_order_events"


def rows(table: str) -> list[dict]:
    dt = try_open(table)
    return dt.to_pyarrow_table().to_pylist() if dt is not None else []


def tumbling_counts() -> dict:
    return {r["window_start"].strftime("%H:%M"): r["events"] for r in rows(WINDOWS_TABLE) if r["window_kind"] == "tumbling"}


def run(config, steps=None, **kwargs) -> list[dict]:
    [(status, value)] = race(DRIVER, [((config, steps), kwargs)], timeout=600)
    assert status == "ok", value
    return value


@pytest.mark.parametrize("failpoint", ["stream.before_windows_commit", "stream.after_windows_commit"])
def test_every_event_counted_once_after_a_sigkill_mid_batch(lakehouse_root, kafka_broker, failpoint):
    # 20 minutes of event time: no event can fall behind the 30-minute watermark, whatever the batches
    events = [event(i, f"2024-01-01T10:{i % 20:02d}:00+00:00", customer=i % 5) for i in range(60)]
    bad = ["not json", {"event_id": "x", "order_id": "abc", "customer_id": 1, "event_type": "order_placed",
                        "event_time": "2024-01-01T10:00:00Z", "amount": "1"}]
    produce(kafka_broker, bad + events)
    # the first micro-batch (at most 25 messages) dies after the quarantine commit, before or after the windows'
    assert run_and_kill(DRIVER, (kafka_broker,), {"max_offsets": 25}, failpoint=failpoint, timeout=600) == -9
    [result] = run(kafka_broker, max_offsets=25)  # restart from the checkpoint: replays the planned batch first
    assert result["batches"][0] == 0 and len(result["batches"]) >= 3

    expected = Counter(f"10:{(i % 20) // 10 * 10:02d}" for i in range(60))
    assert tumbling_counts() == dict(expected)
    sliding_total = sum(r["events"] for r in rows(WINDOWS_TABLE) if r["window_kind"] == "sliding")
    assert sliding_total == 2 * 60  # every event is in two sliding windows
    quarantined = rows(QUARANTINE_TABLE)
    assert sorted(q["_reason"] for q in quarantined) == ["not a JSON object with order event fields",
                                                         "order_id is not an integer: abc"]
    assert rows(LATE_TABLE) == []
    # one version per batch recorded with the rows: the replay wrote nothing twice
    app_id = f"stream.{result['query_id']}"
    assert open_table(WINDOWS_TABLE).transaction_version(app_id) == result["batches"][-1]


def test_late_events_go_to_the_late_table_not_into_closed_windows(lakehouse_root, kafka_broker):
    early = [event(i, f"2024-01-01T10:{i:02d}:00+00:00") for i in range(20)]
    later = [event(100 + i, f"2024-01-01T11:3{i}:00+00:00") for i in range(3)]
    steps = [early, later, [event(200, "2024-01-01T11:34:00+00:00")],
             # lateness is checked against the previous batch's watermark: the no-data batch that ends
             # the run before moved it to 11:04 (11:34 - 30 min): 10:05's windows have closed, 11:20's not
             [event(999, "2024-01-01T10:05:00+00:00", amount="5.00"), event(998, "2024-01-01T11:20:00+00:00")]]
    results = run(kafka_broker, steps)
    assert tumbling_counts()["10:00"] == 10  # the late event did not reopen its window
    assert tumbling_counts()["11:20"] == 1  # on time: counted
    late = rows(LATE_TABLE)
    assert {(r["event_id"], r["window_kind"], r["window_start"].strftime("%H:%M")) for r in late} == {
        ("e999", "tumbling", "10:00"), ("e999", "sliding", "10:00"), ("e999", "sliding", "10:05")}
    assert {(r["watermark"].strftime("%H:%M"), r["seconds_late"]) for r in late} == {("11:04", 59 * 60.0)}
    # what we kept is exactly what Spark dropped: every valid event is in its tumbling window or late, once
    valid = sum(len(step) for step in steps)
    late_tumbling = sum(1 for r in late if r["window_kind"] == "tumbling")
    assert sum(tumbling_counts().values()) + late_tumbling == valid
    assert results[-1]["late_rows"] == results[-1]["spark_rows_dropped_by_watermark"] == 3  # one group per window here
    assert results[-1]["late_events"] == 1
