"""Run health: the DAG callbacks' records of finished runs and missed deadlines become one
summary row per DAG (runs, failures, retries, deadline misses, durations) for the page."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from include.lakehouse.observability import runs
from lakehouse_airflow.run_health import dag_failed, dag_succeeded


def test_callbacks_record_runs_and_the_week_is_summarised_per_dag(lakehouse_root):
    now = datetime.now(timezone.utc)

    def context(run_id, minutes, try_number=1):  # runs end one after the other, r3 last
        end = now - timedelta(hours=3 - int(run_id[1]))
        run = SimpleNamespace(dag_id="cdc_apply", run_id=run_id, run_type="scheduled",
                              start_date=end - timedelta(minutes=minutes), end_date=end)
        return {"dag_run": run, "run_id": run_id, "ti": SimpleNamespace(task_id="apply", try_number=try_number),
                "reason": "success" if try_number == 1 else "task_failure"}

    dag_succeeded(context("r1", 2))
    dag_succeeded(context("r2", 4, try_number=2))  # the last task needed a retry
    dag_failed(context("r3", 6, try_number=3))
    runs.record_deadline_miss({"dag_id": "cdc_apply", "run_id": "r3", "severity": "warning", "deadline": "t"})
    runs.record_deadline_miss({"dag_id": "cdc_apply", "run_id": "r3", "severity": "critical", "deadline": "t"})
    runs.record_run({"dag_id": "old_dag", "run_id": "x", "state": "failed", "started_at": now - timedelta(days=9),
                     "ended_at": now - timedelta(days=9), "duration_s": 1.0})  # outside the week

    assert runs.summarise(now=now + timedelta(seconds=1)) == [{
        "observed_at": now + timedelta(seconds=1), "dag_id": "cdc_apply", "runs": 3, "failed": 1, "retried": 2,
        "deadline_misses": 2, "mean_duration_s": 240.0, "max_duration_s": 360.0, "last_state": "failed"}]


def test_a_broken_store_never_fails_the_callback(monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_ROOT", "/proc/no-such-place")
    dag_succeeded({"dag_run": None, "run_id": "r1"})  # logged, not raised
