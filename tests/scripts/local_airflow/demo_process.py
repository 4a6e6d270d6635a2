"""Run `python -m scripts.local_airflow <command>` as `make` does, on its own ports and state."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_env(tmp_path, **env) -> dict[str, str]:
    # not the test session's Airflow settings, nor a store another test pointed MLflow at: the demo's
    # MLflow store is its own, beside its lakehouse (where the tests read it)
    inherited = {k: v for k, v in os.environ.items()
                 if not k.startswith("AIRFLOW") and k not in ("MLFLOW_TRACKING_URI", "LAKEHOUSE_MLFLOW_ARTIFACTS")}
    return {**inherited,
            "DBT_DUCKDB_PATH": str(tmp_path / "dbt" / "lakehouse.duckdb"),
            "LAKEHOUSE_AIRFLOW_HOME": str(tmp_path / "airflow"), "LAKEHOUSE_ROOT": str(tmp_path / "lakehouse"),
            "LAKEHOUSE_ALERTS_FILE": str(tmp_path / "alerts.jsonl"),
            "LAKEHOUSE_AIRFLOW_PORT": str(free_port()), "LAKEHOUSE_SPARK_CONNECT_PORT": str(free_port()),
            "LAKEHOUSE_KAFKA_PORT": str(free_port()), **env}


def run_local_airflow(tmp_path, command: str = "demo", timeout: float = 1500, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scripts.local_airflow", command], cwd=ROOT,
                          env=local_env(tmp_path, **env), capture_output=True, text=True, timeout=timeout)
