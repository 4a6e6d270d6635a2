"""A real local Airflow (api-server, scheduler, dag-processor on a free port, own AIRFLOW_HOME,
LAKEHOUSE_ROOT and lineage log) for the browser tests, and a small REST client for it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from scripts import localenv
from tests.scripts.local_airflow.demo_process import free_port


class Stack:
    def __init__(self, base: Path):
        self.base = base
        self.port = free_port()
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LAKEHOUSE"))}
        self.lineage_file = base / "lineage" / "events.jsonl"
        os.environ["LAKEHOUSE_LINEAGE_FILE"] = str(self.lineage_file)
        try:
            env = localenv.airflow_env(home=base / "airflow", port=self.port)
        finally:
            del os.environ["LAKEHOUSE_LINEAGE_FILE"]
        self.env = {**inherited, **env, "LAKEHOUSE_ROOT": str(base / "lakehouse"),
                    "LAKEHOUSE_ALERTS_FILE": str(base / "alerts.jsonl"),
                    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen] = {}
        self._token: str | None = None

    def start(self) -> None:
        airflow = str(Path(sys.executable).parent / "airflow")
        logs = self.base / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        subprocess.run([airflow, "db", "migrate"], env=self.env, check=True, capture_output=True)
        for name, cmd in (("api-server", [airflow, "api-server", "--port", str(self.port), "--host", "127.0.0.1"]),
                          ("scheduler", [airflow, "scheduler"]), ("dag-processor", [airflow, "dag-processor"])):
            self.procs[name] = subprocess.Popen(cmd, env=self.env, stdout=(logs / f"{name}.log").open("w"),
                                                stderr=subprocess.STDOUT, start_new_session=True,
                                                cwd=localenv.ROOT)
        self.wait(lambda: self._up(), "the api-server", 180)

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n" + "\n".join(p.read_text().splitlines()[-20:])
                         for p in sorted((self.base / "logs").glob("*.log")))

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    def wait(self, check, what: str, timeout: float, every: float = 1.0):
        end = time.time() + timeout
        while time.time() < end:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise AssertionError(f"{name} exited ({proc.returncode}):\n{self.log_tail()}")
            try:
                result = check()
            except OSError:
                result = None
            if result:
                return result
            time.sleep(every)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{self.log_tail()}")

    def _up(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=5) as r:
            return r.status == 200

    # ------------------------------------------------------------------ REST
    def token(self) -> str:
        if self._token is None:
            req = urllib.request.Request(f"{self.url}/auth/token", method="POST",
                                         data=json.dumps({"username": "admin", "password": "admin"}).encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as r:
                self._token = json.loads(r.read())["access_token"]
        return self._token

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        req = urllib.request.Request(f"{self.url}/api/v2/{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {self.token()}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"{}")

    def dag_registered(self, dag_id: str) -> bool:
        try:
            return self.api("GET", f"dags/{dag_id}")["dag_id"] == dag_id
        except urllib.error.HTTPError:
            return False

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        from datetime import datetime, timezone

        run = self.api("POST", f"dags/{dag_id}/dagRuns",
                       {"logical_date": datetime.now(timezone.utc).isoformat(), "conf": conf or {}})
        return run["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        from urllib.parse import quote

        return self.api("GET", f"dags/{dag_id}/dagRuns/{quote(run_id)}")["state"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        state = self.wait(lambda: (s := self.run_state(dag_id, run_id)) in ("success", "failed") and s,
                          f"{dag_id} run {run_id}", timeout, every=2)
        assert state == "success", f"{dag_id} {run_id}: {state}\n{self.log_tail()}"
        return state
