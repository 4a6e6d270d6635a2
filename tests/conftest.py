"""Shared fixtures. Before anything imports Airflow, point it at a throw-away AIRFLOW_HOME
with the project's settings, so tests never touch `.local/`; every test that writes
tables gets its own LAKEHOUSE_ROOT.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(ROOT), str(ROOT / "plugins")) if p not in sys.path]

from scripts import localenv  # noqa: E402

_HOME = Path(tempfile.mkdtemp(prefix="lakehouse-test-airflow-"))
_ENV = localenv.airflow_env(home=_HOME, port=int(os.environ.get("LAKEHOUSE_TEST_AIRFLOW_PORT", 18080)))
_ENV["LAKEHOUSE_ROOT"] = str(_HOME / "lakehouse")
_ENV["LAKEHOUSE_ALERTS_FILE"] = str(_HOME / "alerts.jsonl")
_ENV["LAKEHOUSE_DB_TEMPLATES"] = str(_HOME / "db-templates")  # the session's, not the venv's (its paths are throw-away)
localenv.apply(_ENV)
logging.getLogger("py4j").setLevel(logging.WARNING)  # py4j logs from __del__ after pytest closed its streams


@pytest.fixture(scope="session")
def airflow_env() -> dict[str, str]:
    return dict(_ENV)


@pytest.fixture()
def lakehouse_root(tmp_path, monkeypatch):
    root = tmp_path / "lakehouse"
    root.mkdir()
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(root))
    return root


@pytest.fixture()
def kafka_broker(tmp_path):
    """A real embedded Kafka-compatible broker (tansu) on a free loopback port, topics created."""
    import socket

    from scripts import kafka_broker

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = kafka_broker.start(port, tmp_path / "kafka.log")
    yield kafka_broker.client_config(port)
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def airflow_db(airflow_env) -> dict[str, str]:
    """The test AIRFLOW_HOME's metadata DB, migrated once per session (for `dag.test()`)."""
    import subprocess

    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True,
                   env={**os.environ, **airflow_env})
    return airflow_env


@pytest.fixture()
def webhook_receiver():
    """A local HTTP receiver standing in for PagerDuty / a webhook: yields (url, received events)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v2/enqueue", received
    server.shutdown()


@pytest.fixture(scope="session")
def sail_url(tmp_path_factory):
    """A real Sail Spark Connect server (the local default engine, Delta built in) on a free port.

    Talk to it from a spawned process (tests/processes.py): once a process opens a Connect
    session, pyspark refuses classic sessions in it, and the JVM tests run classic in-process.
    """
    import socket

    from scripts import spark_engine

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = spark_engine.start("sail", port, tmp_path_factory.mktemp("sail") / "sail.log")
    yield spark_engine.url(port)
    spark_engine.stop(proc)
