"""The AssetWatcher on shop.order_events starts stream_order_events under a real dag-processor,
scheduler and triggerer (own AIRFLOW_HOME, SQLite): a message on the topic -> an asset event ->
an asset-triggered DAG run. The first event waits for the triggerer's consumer-group join."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts import localenv
from tests.streaming.drivers import event, produce
from tests.scripts.local_airflow.demo_process import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.airflow]


def asset_triggered_runs(db: Path) -> list[tuple]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as con:
        try:
            return con.execute("SELECT run_id, run_type FROM dag_run WHERE dag_id = 'stream_order_events' "
                               "AND run_type = 'asset_triggered'").fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return []


def test_a_message_on_the_topic_starts_the_streaming_dag(tmp_path, kafka_broker):
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(ROOT / "dags" / "stream_order_events.py", dags)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}  # not the test session's
    env = {**inherited, **localenv.airflow_env(home=tmp_path / "airflow", port=free_port()),
           "AIRFLOW__CORE__DAGS_FOLDER": str(dags), "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
           "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5", "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
           "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps({"conn_type": "kafka", "extra": {
               **kafka_broker, "group.id": "lakehouse-watch-test", "auto.offset.reset": "earliest"}}),
           "LAKEHOUSE_ROOT": str(tmp_path / "lakehouse")}
    airflow = [sys.executable, "-m", "airflow"]
    subprocess.run([*airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = [subprocess.Popen([*airflow, name], env=env, stdout=(logs / f"{name}.log").open("w"),
                              stderr=subprocess.STDOUT, start_new_session=True)
             for name in ("dag-processor", "scheduler", "triggerer")]
    db = tmp_path / "airflow" / "airflow.db"
    try:
        deadline, i = time.time() + 300, 0
        while not asset_triggered_runs(db):
            assert time.time() < deadline, "no asset-triggered run within 300 s; see " + str(logs)
            assert all(p.poll() is None for p in procs), "an Airflow component died; see " + str(logs)
            produce(kafka_broker, [event(i, "2024-01-01T10:00:00+00:00")])  # until the watcher has joined
            i += 1
            time.sleep(5)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    [(run_id, run_type)] = asset_triggered_runs(db)[:1]
    assert run_type == "asset_triggered" and run_id
