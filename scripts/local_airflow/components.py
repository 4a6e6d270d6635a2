"""The process supervisor: background components (Kafka, Spark Connect, Airflow's api-server,
scheduler, dag-processor, triggerer), each in its own process group, watched and stopped together."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from scripts import localenv
from scripts.local_airflow.settings import ROOT, DemoError, kafka_port, spark_connect_port


def _die_with_parent() -> None:
    """Linux: the component gets SIGTERM if this runner dies without cleaning up."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Components:
    """Background processes, each in its own process group, stopped together."""

    def __init__(self, env: dict[str, str]):
        self.env = {**os.environ, **env}
        self.logs = Path(env["AIRFLOW_HOME"]) / "logs" / "components"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, cmd: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None) -> None:
        """Start `cmd` as component `name` (`env`, when given, replaces the shared environment:
        the Astro emulation gives each component its own container's)."""
        out = (self.logs / f"{name}.log").open("a")
        self.procs[name] = subprocess.Popen(cmd, env=env or self.env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                                            start_new_session=True, preexec_fn=_die_with_parent)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = "\n".join((self.logs / f"{name}.log").read_text().splitlines()[-15:])
                raise DemoError(f"{name} exited with code {proc.returncode}; see {self.logs / (name + '.log')}:\n{tail}")

    def stop(self, grace: float = 10) -> None:
        """SIGTERM to every component's process group; SIGKILL to what is still up after `grace` s."""
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.time() + grace
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


LAUNCHED = ("scheduler", "dag-processor")  # through scripts/local_airflow/launch.py: they preload


def start_launched(components: Components, ready: Path | None = None) -> None:
    """The scheduler and the dag-processor through scripts/local_airflow/launch.py: each imports
    what its forks need (the scheduler the task stack, the dag-processor what parses and DAG
    callbacks import), then - once `ready` exists, when given - runs Airflow's CLI. Started
    before the metadata DB is migrated, the preloads overlap the migration."""
    python = str(localenv.VENV_BIN / "python")
    env = {**components.env, "LAKEHOUSE_LAUNCH_WHEN": str(ready)} if ready else None
    for name in LAUNCHED:
        components.start(name, [python, "-m", "scripts.local_airflow.launch", name], env=env)


def start_airflow(components: Components, port: int, triggerer: bool = True) -> None:
    """Airflow as Astro runs it: api-server, scheduler, dag-processor and triggerer (the two of
    LAUNCHED through the launcher, unless started already; the triggerer later when not now)."""
    airflow = str(localenv.VENV_BIN / "airflow")
    components.start("api-server", [airflow, "api-server", "--port", str(port), "--host", "127.0.0.1"])
    if triggerer:
        start_triggerer(components)
    if not set(LAUNCHED) <= set(components.procs):
        start_launched(components)


def start_triggerer(components: Components) -> None:
    components.start("triggerer", [str(localenv.VENV_BIN / "airflow"), "triggerer"])


def start_spark_engine(components: Components) -> str:
    """The chosen local Spark Connect engine (scripts/spark_engine.py: Sail unless
    LAKEHOUSE_SPARK_ENGINE=jvm), started; returns the engine's name."""
    from scripts import spark_engine

    engine = spark_engine.chosen_engine()
    components.procs["spark-connect"] = spark_engine.start(
        engine, spark_connect_port(), components.logs / "spark-connect.log", env=components.env,
        preexec_fn=_die_with_parent)
    return engine


def start_kafka(components: Components) -> None:
    from scripts import kafka_broker

    components.procs["kafka"] = kafka_broker.start(kafka_port(), components.logs / "kafka.log")


def wait_for(check, what: str, timeout: float, components: Components | None = None, every: float = 1.0):
    end = time.time() + timeout
    while time.time() < end:
        if components:
            components.check_alive()
        result = check()
        if result:
            return result
        time.sleep(every)
    raise DemoError(f"timed out after {timeout:.0f}s waiting for {what}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except Exception:
        return False


def tcp_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0
