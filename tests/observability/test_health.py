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


# --- bytes added per day (issue #22) ----------------------------------------------------------------

def _notes(n: int, width: int, start: int = 0) -> pa.Table:
    """n orders with a random (incompressible) note of `width` hex characters."""
    import os

    return pa.table({"order_id": list(range(start, start + n)), "order_date": ["2026-01-01"] * n,
                     "amount": [1.0] * n, "note": [os.urandom(width // 2).hex() for _ in range(n)]})


def _file_bytes(dt) -> int:
    return sum(pa.table(dt.get_add_actions(flatten=True))["size_bytes"].to_pylist())


def _today_volume(name: str, day: str) -> dict:
    return next(r for r in health.read_ops(health.VOLUME) if r["table_name"] == name and r["day"] == day)


def _backdate(root, name: str, version: int, when: datetime) -> None:
    """Make commit `version` of a local test table look as if it was made at `when` (a test cannot
    wait for days to pass): rewrite its commitInfo timestamp in the log."""
    import json as _json

    log = root / name / "_delta_log" / f"{version:020d}.json"
    actions = [_json.loads(line) for line in log.read_text().splitlines()]
    for action in actions:
        if "commitInfo" in action:
            action["commitInfo"]["timestamp"] = int(when.timestamp() * 1000)
    log.write_text("\n".join(_json.dumps(a) for a in actions) + "\n")


def test_same_rows_but_fifty_times_wider_raise_one_volume_alert_naming_bytes(lakehouse_root):
    from include.lakehouse.tables.delta import try_open

    now = datetime.now(timezone.utc)
    # the trailing week: 100 orders a day with a 10-character note, one commit a day
    for version, days_ago in enumerate(range(7, 0, -1)):
        append("bronze/orders", _notes(100, 10, start=100 * version))
        _backdate(lakehouse_root, "bronze/orders", version, now - timedelta(days=days_ago))
    narrow = _file_bytes(try_open("bronze/orders")) / 7
    append("bronze/orders", _notes(100, 500, start=700))  # today: the same 100 rows, each 50x wider

    first = health.observe(now=now, tables=["bronze/orders"])
    assert first["anomalies"] == ["bronze/orders"]
    assert [(a["kind"], a["table"]) for a in first["alerts"]] == [("volume_anomaly", "bronze/orders")]
    summary = first["alerts"][0]["summary"]
    assert "bytes added" in summary and "rows added" not in summary, summary  # the rows were as usual
    row = health.latest_by(health.read_ops(health.HEALTH), "table_name", "observed_at")["bronze/orders"]
    assert row["rows_added_day"] == 100 and row["volume_median"] == 100
    assert row["bytes_added_day"] > 10 * narrow and 0.8 * narrow < row["bytes_median"] < 1.2 * narrow

    # observed again the same day (and after another wide write): no second alert
    append("bronze/orders", _notes(100, 500, start=800))
    assert health.observe(now=now + timedelta(minutes=5), tables=["bronze/orders"])["alerts"] == []
    assert [a["kind"] for a in health.read_ops(health.ALERTS)] == ["volume_anomaly"]


def test_bytes_added_per_day_are_the_sizes_of_the_files_the_days_commits_added(lakehouse_root):
    from include.lakehouse.maintenance.operations import compact
    from include.lakehouse.tables.delta import try_open

    now = datetime.now(timezone.utc)
    day = now.date().isoformat()
    for i in range(3):
        append("bronze/orders", _notes(50, 200, start=50 * i))
    written = _file_bytes(try_open("bronze/orders"))  # three appends: every file in the snapshot was added today
    health.observe(now=now, tables=["bronze/orders"])
    assert _today_volume("bronze/orders", day)["bytes_added"] == written

    # compaction rewrites the three files into one (dataChange=false): no bytes, no rows added
    assert compact("bronze/orders").files_removed == 3
    health.observe(now=now + timedelta(minutes=1), tables=["bronze/orders"])
    volume = _today_volume("bronze/orders", day)
    assert (volume["rows_added"], volume["bytes_added"]) == (150, written)

    # a later write of the same day is added to what was stored, never counted twice
    append("bronze/orders", _notes(50, 200, start=150))
    newest = try_open("bronze/orders").get_add_actions(flatten=True)
    added = max(zip(newest["modification_time"].to_pylist(), newest["size_bytes"].to_pylist()))[1]
    health.observe(now=now + timedelta(minutes=2), tables=["bronze/orders"])
    volume = _today_volume("bronze/orders", day)
    assert (volume["rows_added"], volume["bytes_added"]) == (200, written + added)
    health.observe(now=now + timedelta(minutes=3), tables=["bronze/orders"])
    assert _today_volume("bronze/orders", day)["bytes_added"] == written + added


def test_a_day_with_only_a_compaction_is_no_data_not_an_anomaly(lakehouse_root):
    from include.lakehouse.maintenance.operations import compact

    now = datetime.now(timezone.utc)
    for version in range(3):  # the writes were yesterday's and the days before; today only compaction ran
        append("bronze/orders", _notes(50, 200, start=50 * version))
        _backdate(lakehouse_root, "bronze/orders", version, now - timedelta(days=3 - version))
    compact("bronze/orders")
    result = health.observe(now=now, tables=["bronze/orders"])
    assert result["anomalies"] == [] and result["alerts"] == []
    row = health.latest_by(health.read_ops(health.HEALTH), "table_name", "observed_at")["bronze/orders"]
    assert row["volume"] == "no_data" and row["bytes_added_day"] == 0 and row["rows_added_day"] == 0


OLD_VOLUME_SCHEMA = pa.schema([("table_name", pa.string()), ("day", pa.string()), ("rows_added", pa.int64()),
                               ("commits", pa.int64())])
OLD_HEALTH_SCHEMA = pa.schema([
    ("observed_at", pa.timestamp("us", tz="UTC")), ("day", pa.string()), ("table_name", pa.string()),
    ("version", pa.int64()), ("last_commit_at", pa.timestamp("us", tz="UTC")), ("age_hours", pa.float64()),
    ("sla_hours", pa.float64()), ("freshness", pa.string()), ("rows_total", pa.int64()),
    ("bytes_total", pa.int64()), ("rows_added_day", pa.int64()), ("volume_median", pa.float64()),
    ("volume", pa.string()), ("schema_json", pa.string()), ("schema_changed", pa.bool_()),
])


def test_ops_tables_written_by_the_old_observer_still_work(lakehouse_root):
    """ops/table_volume and ops/table_health as the observer before bytes wrote them (no bytes
    columns): the new observer adds the columns, keeps the old days, and judges rows alone
    while no day has bytes."""
    now = datetime.now(timezone.utc)
    old_days = [{"table_name": "bronze/orders", "day": (now.date() - timedelta(days=d)).isoformat(),
                 "rows_added": 100, "commits": 1} for d in range(1, 8)]
    merge_upsert(health.VOLUME, pa.Table.from_pylist(old_days, schema=OLD_VOLUME_SCHEMA), keys=["table_name", "day"])
    append(health.HEALTH, pa.Table.from_pylist([{"observed_at": now - timedelta(days=1), "day": old_days[0]["day"],
                                                 "table_name": "bronze/orders", "freshness": "fresh", "volume": "ok",
                                                 "schema_changed": False}], schema=OLD_HEALTH_SCHEMA))
    append("bronze/orders", _notes(1000, 10))

    result = health.observe(now=now, tables=["bronze/orders"])
    assert [(a["kind"], a["table"]) for a in result["alerts"]] == [("volume_anomaly", "bronze/orders")]
    assert "rows added" in result["alerts"][0]["summary"]
    volume = {r["day"]: r for r in health.read_ops(health.VOLUME)}
    assert all(volume[d["day"]]["rows_added"] == 100 and volume[d["day"]]["bytes_added"] is None for d in old_days)
    assert volume[now.date().isoformat()]["rows_added"] == 1000 and volume[now.date().isoformat()]["bytes_added"] > 0
    page = health.health_page_data()
    assert page["volume_bytes"]["bronze/orders"][-1][1] == volume[now.date().isoformat()]["bytes_added"]
    assert page["volume_bytes"]["bronze/orders"][0][1] is None
