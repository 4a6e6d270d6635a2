"""observe_lakehouse's engine on real Delta tables: a stale table and an injected volume
anomaly each raise exactly one alert (and again none on a second observation the same day);
a schema change is recorded; the page data comes from the ops/ tables."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa

from include.lakehouse.observability import health
from include.lakehouse.tables.delta import append, merge_upsert


def _orders(n: int, start: int = 0) -> pa.Table:
    return pa.table({"order_id": list(range(start, start + n)), "order_date": ["2026-01-01"] * n,
                     "amount": [1.0] * n})


def test_a_stale_table_and_a_volume_anomaly_each_raise_one_alert(lakehouse_root):
    now = datetime.now(timezone.utc)
    # bronze/orders: 100 rows a day for the trailing week (as earlier observations recorded
    # them), then 1000 rows today: an anomaly against the median of 100.
    history = [{"table_name": "bronze/orders", "day": (now.date() - timedelta(days=d)).isoformat(),
                "rows_added": 100, "commits": 1} for d in range(1, 8)]
    merge_upsert(health.VOLUME, pa.Table.from_pylist(history, schema=health.VOLUME_SCHEMA), keys=["table_name", "day"])
    append("bronze/orders", _orders(1000))
    # gold/smoke_daily_revenue: 10 rows today as every day: normal volume
    normal = [{**h, "table_name": "gold/smoke_daily_revenue", "rows_added": 10} for h in history]
    merge_upsert(health.VOLUME, pa.Table.from_pylist(normal, schema=health.VOLUME_SCHEMA), keys=["table_name", "day"])
    append("gold/smoke_daily_revenue", pa.table({"order_date": ["2026-01-01"] * 10, "revenue": [1.0] * 10}))
    tables = ["bronze/orders", "gold/smoke_daily_revenue"]

    first = health.observe(now=now, tables=tables)
    assert first["anomalies"] == ["bronze/orders"] and first["stale"] == []
    assert [(a["kind"], a["table"]) for a in first["alerts"]] == [("volume_anomaly", "bronze/orders")]

    # two days later nothing was written: both tables are stale (SLA 36 h); the anomaly of
    # the first day is not raised again (it is not today's any more, and it was raised)
    later = now + timedelta(hours=48)
    second = health.observe(now=later, tables=tables)
    assert sorted((a["kind"], a["table"]) for a in second["alerts"]) == [
        ("table_stale", "bronze/orders"), ("table_stale", "gold/smoke_daily_revenue")]
    assert health.observe(now=later + timedelta(minutes=5), tables=tables)["alerts"] == []  # once per day
    assert sorted((r["kind"], r["table_name"]) for r in health.read_ops(health.ALERTS)) == [
        ("table_stale", "bronze/orders"), ("table_stale", "gold/smoke_daily_revenue"),
        ("volume_anomaly", "bronze/orders")]

    page = health.health_page_data()
    by_table = {t["table_name"]: t for t in page["tables"]}
    assert by_table["bronze/orders"]["freshness"] == "stale" and by_table["bronze/orders"]["rows_total"] == 1000
    assert page["volume"]["bronze/orders"][-1] == (now.date().isoformat(), 1000)


def test_a_new_column_is_recorded_as_a_schema_change(lakehouse_root):
    append("bronze/orders", _orders(5))
    assert health.observe(tables=["bronze/orders"])["schema_changes"] == []
    append("bronze/orders", _orders(5, 5).append_column("channel", pa.array(["web"] * 5)))
    assert health.observe(tables=["bronze/orders"])["schema_changes"] == ["bronze/orders"]
    change = health.read_ops(health.SCHEMA_CHANGES)[0]
    assert change["added"] == "channel" and change["removed"] == "" and change["version"] == 1


def test_no_history_no_verdict():
    assert health.volume_verdict(1000, [100, 100], 3, 3.0)[0] == "no_history"
    assert health.volume_verdict(250, [100, 100, 90], 3, 3.0) == ("ok", 100.0)
    assert health.volume_verdict(20, [100, 100, 90], 3, 3.0)[0] == "anomaly"
    assert health.volume_verdict(None, [100, 100, 90], 3, 3.0)[0] == "no_data"
