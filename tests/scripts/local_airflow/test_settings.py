"""`make demo`'s preflight: bad local state is one clear line (exit 2), never a traceback."""

from __future__ import annotations

import socket

from tests.scripts.local_airflow.demo_process import run_local_airflow


def test_port_in_use_is_one_clear_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = run_local_airflow(tmp_path, LAKEHOUSE_AIRFLOW_PORT=str(busy.getsockname()[1]))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "is already in use" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_corrupt_metadata_db_is_one_clear_line(tmp_path):
    (tmp_path / "airflow").mkdir()
    (tmp_path / "airflow" / "airflow.db").write_bytes(b"this is not a sqlite database" * 100)
    result = run_local_airflow(tmp_path)
    assert result.returncode == 2 and "corrupt" in result.stderr and "make reset" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_java_is_one_clear_line(tmp_path):
    result = run_local_airflow(tmp_path, JAVA_HOME=str(tmp_path / "no-java"))
    assert result.returncode == 2 and "Java not found" in result.stderr
