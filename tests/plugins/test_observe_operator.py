"""ObserveLakehouseOperator as a task: an injected volume anomaly and a stale table each raise
exactly one alert through the alert routing (the outbox), also when the task runs again."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pyarrow as pa

from include.lakehouse.observability import config, health
from include.lakehouse.tables.delta import append, merge_upsert
from lakehouse_airflow.operators.observe import ObserveLakehouseOperator


def test_a_volume_anomaly_and_a_stale_table_each_alert_once(lakehouse_root, tmp_path, monkeypatch):
    outbox = tmp_path / "alerts.jsonl"
    monkeypatch.setenv("LAKEHOUSE_ALERTS_FILE", str(outbox))
    settings = tmp_path / "observability.yaml"  # gold/smoke_daily_revenue must be written every 0.7 s
    settings.write_text("freshness:\n  default_hours: 36\n  layers: {ops: null, quarantine: null}\n"
                        "  tables: {gold/smoke_daily_revenue: 0.0002}\n")
    monkeypatch.setattr(config, "CONFIG_FILE", settings)
    config.load_config.cache_clear()
    today = datetime.now(timezone.utc).date()
    merge_upsert(health.VOLUME, pa.Table.from_pylist(
        [{"table_name": "bronze/smoke_orders", "day": (today - timedelta(days=d)).isoformat(), "rows_added": 50,
          "commits": 1} for d in range(1, 6)], schema=health.VOLUME_SCHEMA), keys=["table_name", "day"])
    append("bronze/smoke_orders", pa.table({"order_id": list(range(5000)), "order_date": ["2026-01-01"] * 5000}))
    append("gold/smoke_daily_revenue", pa.table({"order_date": ["2026-01-01"], "revenue": [1.0]}))
    time.sleep(1.0)  # the gold table goes stale
    ti = {"ti": SimpleNamespace(dag_id="observe_lakehouse", run_id="r1", task_id="observe_tables", try_number=1)}
    try:
        for run in range(2):
            result = ObserveLakehouseOperator(task_id="observe_tables").execute(ti)
            assert len(result["alerts"]) == (2 if run == 0 else 0)
    finally:
        config.load_config.cache_clear()
    alerts = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert sorted((a["kind"], a["table"], a["severity"]) for a in alerts) == [
        ("table_stale", "gold/smoke_daily_revenue", "warning"), ("volume_anomaly", "bronze/smoke_orders", "warning")]
    assert all(a["dag_id"] == "observe_lakehouse" and a["dedup_key"] for a in alerts)
