"""A small client of Airflow's public REST API (`/api/v2`): what the demo, the canary and the
Astro emulation ask a running Airflow, with the simple auth manager's JWT (`/auth/token`).

Standard library only: the runner never imports Airflow's ORM to drive a run."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

TERMINAL = ("success", "failed")
TI_DONE = ("success", "skipped", "failed", "upstream_failed", "removed")
TI_FAILED = ("failed", "upstream_failed")


class AirflowAPI:
    """`AirflowAPI(port)`: logs in as the simple auth manager's admin (password from
    AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE; with all-admins, no password)."""

    def __init__(self, port: int, host: str = "127.0.0.1", username: str = "admin", password: str | None = None,
                 timeout: float = 30):
        self.base = f"http://{host}:{port}"
        self.username, self.password, self.timeout = username, password, timeout
        self._token: str | None = None

    # ------------------------------------------------------------------ transport
    def _password(self) -> str | None:
        if self.password is not None:
            return self.password
        path = os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
        if path and Path(path).exists():
            return json.loads(Path(path).read_text()).get(self.username)
        return None

    def token(self) -> str:
        """A JWT from the simple auth manager: the admin's login, else (simple_auth_manager_all_admins,
        Astro's local setting) the credential-free token."""
        if self._token is None:
            password, error = self._password(), None
            if password is not None:
                try:
                    self._token = self._send("POST", "/auth/token", {"username": self.username, "password": password},
                                             auth=False)["access_token"]
                except RuntimeError as exc:
                    error = exc
            if self._token is None:
                try:
                    self._token = self._send("GET", "/auth/token", auth=False)["access_token"]
                except RuntimeError:
                    raise error or RuntimeError("Airflow API: no login (set the admin's password)") from None
        return self._token

    def _send(self, method: str, path: str, body: Any = None, auth: bool = True, **query: Any) -> Any:
        url = self.base + path
        params = {k: v for k, v in query.items() if v is not None}
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = json.dumps(body, default=str).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 401 and auth and self._token is not None:  # expired: log in again once
                self._token = None
                return self._send(method, path, body, auth, **query)
            detail = exc.read().decode(errors="replace")[:300]
            raise RuntimeError(f"Airflow API {method} {path}: HTTP {exc.code} {detail}") from None
        return json.loads(text) if text else None

    def get(self, path: str, **query: Any) -> Any:
        return self._send("GET", "/api/v2" + path, **query)

    def get_all(self, path: str, key: str, page: int = 100, **query: Any) -> list[dict]:
        """Every item of a paged collection (the API caps a page at [api] maximum_page_limit)."""
        items: list[dict] = []
        while True:
            batch = self.get(path, limit=page, offset=len(items), **query)
            items += batch[key]
            if not batch[key] or len(items) >= batch.get("total_entries", 0):
                return items

    def _quote(self, value: str) -> str:
        return urllib.parse.quote(value, safe="")

    # ------------------------------------------------------------------ what the runner asks
    def dag_ids(self) -> set[str]:
        """The DAGs the dag-processor has registered (and not marked stale)."""
        dags = self.get_all("/dags", "dags")
        return {d["dag_id"] for d in dags if not d.get("is_stale")}

    def dag(self, dag_id: str) -> dict:
        return self.get(f"/dags/{self._quote(dag_id)}")

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self._send("PATCH", f"/api/v2/dags/{self._quote(dag_id)}", {"is_paused": paused})

    def trigger(self, dag_id: str, run_id: str, logical_date: datetime, conf: dict | None = None) -> dict:
        return self._send("POST", f"/api/v2/dags/{self._quote(dag_id)}/dagRuns",
                          {"dag_run_id": run_id, "logical_date": logical_date.isoformat(), "conf": conf or {}})

    def runs(self, dag_id: str = "~", updated_since: datetime | None = None) -> list[dict]:
        """Runs of `dag_id` ("~": of every DAG), those changed since `updated_since` when given."""
        return self.get_all(f"/dags/{self._quote(dag_id)}/dagRuns", "dag_runs", order_by="id",
                            updated_at_gte=updated_since.isoformat() if updated_since else None)

    def task_instances(self, dag_id: str, run_id: str, updated_since: datetime | None = None) -> list[dict]:
        """Task instances of a run ("~" for `dag_id` and `run_id`: of every run), those changed since
        `updated_since` when given."""
        return self.get_all(f"/dags/{self._quote(dag_id)}/dagRuns/{self._quote(run_id)}/taskInstances",
                            "task_instances", updated_at_gte=updated_since.isoformat() if updated_since else None)

    def queued_asset_events(self, dag_id: str) -> int:
        """Asset events waiting to trigger `dag_id` (0 when none)."""
        try:
            return int(self.get(f"/dags/{self._quote(dag_id)}/assets/queuedEvents").get("total_entries", 0))
        except RuntimeError as exc:
            if "HTTP 404" in str(exc):
                return 0
            raise

    def return_values(self, dag_id: str, run_id: str) -> list[Any]:
        """Every task's return value in the run (the `return_value` XComs), as JSON values."""
        base = f"/dags/{self._quote(dag_id)}/dagRuns/{self._quote(run_id)}/taskInstances"
        entries = self.get_all(f"{base}/~/xcomEntries", "xcom_entries", xcom_key="return_value")
        values = []
        for entry in entries:
            item = self.get(f"{base}/{self._quote(entry['task_id'])}/xcomEntries/return_value",
                            map_index=entry.get("map_index", -1))
            value = item.get("value")
            if isinstance(value, (str, bytes)):
                try:
                    value = json.loads(value)
                except ValueError:
                    continue
            values.append(value)
        return values
