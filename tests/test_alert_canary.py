"""On-call's alert path end to end: `make canary` on a real scheduler + triggerer + dag-processor
+ api-server, with a local HTTP receiver as the PagerDuty-shaped webhook. Every run must page:
both deadline tiers, and one failure alert for a task that retried and failed; a DAG
re-serialization between runs must not lose the deadlines (cf. Airflow issue #68732)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.scripts.local_airflow.demo_process import free_port

ROOT = Path(__file__).resolve().parents[1]


def test_canary_runs_page_for_missed_deadlines_and_a_failed_task_once(tmp_path, webhook_receiver):
    url, received = webhook_receiver
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}  # not the test session's
    env = {**inherited,
           "LAKEHOUSE_AIRFLOW_HOME": str(tmp_path / "airflow"), "LAKEHOUSE_ROOT": str(tmp_path / "lakehouse"),
           "LAKEHOUSE_ALERTS_FILE": str(tmp_path / "alerts.jsonl"),
           "LAKEHOUSE_AIRFLOW_PORT": str(free_port()), "LAKEHOUSE_SPARK_CONNECT_PORT": str(free_port()),
           "LAKEHOUSE_KAFKA_PORT": str(free_port()),
           "LAKEHOUSE_ALERT_WEBHOOK_URL": url}
    result = subprocess.run([sys.executable, "-m", "scripts.local_airflow", "canary"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "DAGs re-serialized" in result.stdout
    runs: dict[str, list[dict]] = {}
    for event in received:
        runs.setdefault(event["payload"]["custom_details"]["run_id"], []).append(event)
    assert len(runs) == 2, sorted(runs)
    for run_id, events in runs.items():
        kinds = sorted((e["payload"]["class"], e["payload"]["severity"]) for e in events)
        assert kinds == [("deadline_missed", "critical"), ("deadline_missed", "warning"),
                         ("task_failed", "critical")], (run_id, kinds)
        failure = next(e for e in events if e["payload"]["class"] == "task_failed")
        details = failure["payload"]["custom_details"]
        assert details["dag_id"] == "alert_canary" and details["task_id"] == "fail_on_purpose"
        assert details["try_number"] == 3 and details["owner"] == "data-platform" and details["logical_date"]
        assert failure["dedup_key"] == f"alert_canary/{run_id}/fail_on_purpose"
        assert failure["links"][0]["href"].endswith(f"/dags/alert_canary/runs/{run_id}")
        deadline = next(e for e in events if e["payload"]["severity"] == "warning")
        assert deadline["payload"]["custom_details"]["deadline"] not in (None, "None")
