"""Environment of the local (no Docker) Airflow: one function used by `make demo`,
`make ui`, `make bench` and the tests, so all of them see the same Airflow.

Pure standard library; never imports Airflow (it must set the environment first).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCAL = ROOT / ".local"
VENV_BIN = Path(sys.executable).parent


def java_home() -> str | None:
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    java = shutil.which("java")
    return str(Path(java).resolve().parents[1]) if java else None


def _private_home(home: Path) -> None:
    """AIRFLOW_HOME holds the keys, the login passwords and the metadata DB: owner only."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    home.chmod(0o700)


def _private_file(path: Path, text: str) -> None:
    """Create a file readable by its owner only, from the first byte (no chmod window)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # a concurrent caller created it first: theirs stands
        return
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _secrets(home: Path) -> dict[str, str]:
    path = home / "secrets.json"
    if path.exists():
        path.chmod(0o600)  # one written before this rule
        return json.loads(path.read_text())
    from base64 import urlsafe_b64encode

    values = {
        "jwt_secret": secrets.token_urlsafe(32),
        "secret_key": secrets.token_urlsafe(32),
        "fernet_key": urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    }
    _private_file(path, json.dumps(values))
    return json.loads(path.read_text())


def airflow_env(home: Path | None = None, port: int | None = None) -> dict[str, str]:
    """Variables for every local Airflow process (set on top of os.environ)."""
    home = Path(home or os.environ.get("LAKEHOUSE_AIRFLOW_HOME") or LOCAL / "airflow")
    port = int(port or os.environ.get("LAKEHOUSE_AIRFLOW_PORT", 8080))
    _private_home(home)
    keys = _secrets(home)
    passwords = home / "passwords.json"  # the simple auth manager's logins
    if passwords.exists():
        passwords.chmod(0o600)  # one written before this rule, or rewritten by Airflow
    else:
        _private_file(passwords, json.dumps({"admin": "admin"}))
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "lakehouse_airflow.executors.PreloadingLocalExecutor",
        "GX_ANALYTICS_ENABLED": "False",  # Great Expectations: no usage analytics calls from tasks
        # task slots: dbt_transform's per-model sensors poke a few seconds before they defer, and with
        # 4 slots they held every one while the ML loop's next task waited (6.5 s in one demo)
        "AIRFLOW__CORE__PARALLELISM": os.environ.get("AIRFLOW__CORE__PARALLELISM", "8"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__SECRET_KEY": keys["secret_key"],
        "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        # an idle scheduler looks again after 0.2 s (default 1 s): a DAG's next task, a queued run or an
        # asset-triggered run starts sooner - each hop of the demo's chains waited up to a sleep (0.5 s:
        # the loop and its ops took ~8 s longer, same machine, interleaved runs); a busy one never sleeps
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": os.environ.get("AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME",
                                                                        "0.2"),
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        # Cosmos keeps dbt's partial-parse state between tasks here; its default (/tmp/cosmos) is shared
        # by every checkout on the machine, whose other profiles (paths) would force full re-parses
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
        # dbt_transform's WATCHER producer: its XComs are copied to an Airflow Variable when it fails
        # (for its retry), not after every single push (the Dockerfile sets the same)
        "AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO"),
        "NO_PROXY": "*",  # macOS + LocalExecutor forks; harmless elsewhere
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
        "PATH": os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")]),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "LAKEHOUSE_ROOT": os.environ.get("LAKEHOUSE_ROOT", str(LOCAL / "lakehouse")),
        "LAKEHOUSE_ALERTS_FILE": os.environ.get("LAKEHOUSE_ALERTS_FILE", str(LOCAL / "alerts" / "alerts.jsonl")),
        **lineage_env(Path(os.environ.get("LAKEHOUSE_LINEAGE_FILE") or (
            LOCAL / "lineage" if home == LOCAL / "airflow" else home / "lineage") / "events.jsonl")),
    }
    if java_home():
        env["JAVA_HOME"] = java_home()
    return env


def lineage_env(events: Path) -> dict[str, str]:
    """OpenLineage: events appended to a JSON-lines file (the Lineage page reads them through
    observe_lakehouse); the project's extractor reports the tables `@task` functions touch."""
    events.parent.mkdir(parents=True, exist_ok=True)
    return {
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "lakehouse",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(events), "append": True}),
        "AIRFLOW__OPENLINEAGE__EXTRACTORS": "lakehouse_airflow.lineage_extractor.LakehouseExtractor",
        # emit from a thread of the task's process, not a fork: delta-rs (tokio) panics in a fork
        "AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD": "True",
    }


def apply(env: dict[str, str]) -> None:
    os.environ.update(env)
    for path in reversed(env["PYTHONPATH"].split(os.pathsep)):
        if path not in sys.path:
            sys.path.insert(0, path)
