"""The local Spark Connect engine of the laptop path, started and stopped by the project.

Two engines speak Spark Connect here: Sail (`pysail`, a Rust server with Delta built in;
starts in well under a second) and JVM Spark's own Connect server (spark-submit of
SparkConnectServer from the pyspark wheel; no Delta jars here, so the bridge does Delta).
LAKEHOUSE_SPARK_ENGINE picks one (default `sail`, chosen by the `spark_engines` benchmark, bench/spark_engines.py).
Used by `make demo`, `make ui`, `make bench` and the test fixtures; jobs reach it through
LAKEHOUSE_SPARK_CONNECT_URL and never know which engine answers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ENGINES = ("sail", "jvm")
VENV_BIN = Path(sys.executable).parent


def chosen_engine() -> str:
    engine = os.environ.get("LAKEHOUSE_SPARK_ENGINE", "sail").lower()
    if engine not in ENGINES:
        raise ValueError(f"LAKEHOUSE_SPARK_ENGINE={engine!r}: use one of {ENGINES}")
    return engine


def server_cmd(engine: str, port: int) -> list[str]:
    if engine == "sail":
        return [str(VENV_BIN / "sail"), "spark", "server", "--ip", "127.0.0.1", "--port", str(port)]
    return [str(VENV_BIN / "spark-submit"), "--master", "local[*]",
            "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
            "--conf", f"spark.connect.grpc.binding.port={port}",
            "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
            "--conf", "spark.ui.enabled=false", "--conf", "spark.sql.session.timeZone=UTC",
            "--conf", "spark.driver.memory=2g", "spark-internal"]


def url(port: int) -> str:
    return f"sc://127.0.0.1:{port}"


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start(engine: str, port: int, log: Path, *, timeout: float = 120, env: dict[str, str] | None = None,
          **popen: object) -> subprocess.Popen:
    """Start the engine's Connect server and return once it accepts connections."""
    if engine not in ENGINES:
        raise ValueError(f"unknown Spark engine {engine!r}: use one of {ENGINES}")
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **(env or {})}
    if engine == "jvm":  # spark-submit of the pyspark wheel finds itself through these
        import pyspark

        env.setdefault("SPARK_HOME", str(Path(pyspark.__file__).parent))
        env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
        env.setdefault("PYSPARK_PYTHON", sys.executable)
    proc = subprocess.Popen(server_cmd(engine, port), stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True, env=env, **popen)
    deadline = time.monotonic() + timeout
    while not listening(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the {engine} Spark Connect server did not start on port {port}; see {log}")
        time.sleep(0.02)
    return proc


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    try:
        os.killpg(proc.pid, 15)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()
