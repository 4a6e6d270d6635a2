"""The local Airflow's environment: ports, preflight checks with one-line errors, the metadata DB
migration and airflow_settings.yaml (connections, pools, variables) loaded before any component
starts, as `astro dev start` does."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts import localenv  # noqa: E402

ROOT = localenv.ROOT
DAG_TIMEOUT = int(os.environ.get("DEMO_DAG_TIMEOUT", 1200))
PORT_SETTINGS = {"Airflow API": "LAKEHOUSE_AIRFLOW_PORT", "Spark Connect": "LAKEHOUSE_SPARK_CONNECT_PORT",
                 "Kafka": "LAKEHOUSE_KAFKA_PORT"}


def spark_connect_port() -> int:
    return int(os.environ.get("LAKEHOUSE_SPARK_CONNECT_PORT", 15002))


def kafka_port() -> int:
    return int(os.environ.get("LAKEHOUSE_KAFKA_PORT", 19092))


class DemoError(RuntimeError):
    """A problem the user must fix; printed as one line, without a traceback."""


def say(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def preflight(env: dict[str, str], ports: dict[str, int]) -> None:
    if not env.get("JAVA_HOME") or not Path(env["JAVA_HOME"], "bin", "java").exists():
        raise DemoError("Java not found: install Java 17 (e.g. `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME")
    for name, port in ports.items():
        if not port_free(port):
            raise DemoError(
                f"port {port} ({name}) is already in use: stop what uses it (`lsof -i :{port}`) or set "
                f"{PORT_SETTINGS[name]}=<free port>"
            )
    db = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    if db.exists():
        try:
            with sqlite3.connect(db) as con:
                ok = con.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            ok = str(exc)
        if ok != "ok":
            raise DemoError(f"the local Airflow DB {db} is corrupt ({ok}): run `make reset` to start clean "
                            f"(deletes .local/) or delete that file")


def run_quiet(cmd: list[str], env: dict[str, str], what: str, log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        code = subprocess.call(cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    if code != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise DemoError(f"{what} failed (exit {code}); last lines of {log}:\n{tail}")


def load_settings(path: Path = ROOT / "airflow_settings.yaml") -> dict[str, int]:
    """Load the connections, pools and variables of airflow_settings.yaml into the metadata DB.

    Runs before any component exists (no api-server to ask yet), like `astro dev start`'s import
    of the same file, so it uses Airflow's models directly: the one place here that does."""
    import yaml
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session

    doc = (yaml.safe_load(path.read_text()) or {}).get("airflow", {})
    counts = {"connections": 0, "pools": 0, "variables": 0}
    with create_session() as session:
        for c in doc.get("connections") or []:
            extra = c.get("conn_extra")
            session.query(Connection).filter(Connection.conn_id == c["conn_id"]).delete()
            session.add(Connection(
                conn_id=c["conn_id"], conn_type=c["conn_type"], host=c.get("conn_host"), schema=c.get("conn_schema"),
                login=c.get("conn_login"), password=c.get("conn_password"), port=c.get("conn_port"),
                extra=json.dumps(extra) if isinstance(extra, dict) else extra,
            ))
            counts["connections"] += 1
        for p in doc.get("pools") or []:
            Pool.create_or_update_pool(p["pool_name"], int(p["pool_slot"]), p.get("pool_description") or "",
                                       include_deferred=False, session=session)
            counts["pools"] += 1
    for v in doc.get("variables") or []:
        Variable.set(v["variable_name"], v["variable_value"])
        counts["variables"] += 1
    return counts


ML_STORE = "from scripts.local_airflow.settings import ensure_mlflow_store; ensure_mlflow_store()"


def sqlite_path(conn: str) -> Path | None:
    """The file of a `sqlite:///...` SQLAlchemy URL (None for any other database)."""
    return Path(conn[len("sqlite:///"):]) if conn.startswith("sqlite:///") else None


def db_template(env: dict[str, str]) -> Path:
    """Where a freshly migrated, empty metadata DB for this Airflow is kept: beside the installed
    packages (make install / the first migration write it; `make reset` keeps it, `make clean`
    removes it with .venv). What a migration writes depends on Airflow's version, the installed
    providers (their own tables), the [database] settings and the default pool's size - the key;
    not on the DB's location, keys, ports or folders. A new key simply means one real migration."""
    from importlib.metadata import distributions, version

    providers = sorted(f"{d.metadata['Name']}=={d.version}" for d in distributions()
                       if (d.metadata["Name"] or "").startswith("apache-airflow-providers-"))
    settings = sorted((k, v) for k, v in env.items() if (k.startswith("AIRFLOW__DATABASE__") and k !=
                      "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") or k == "AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT")
    digest = hashlib.sha256(repr((providers, settings)).encode()).hexdigest()[:16]
    return templates_folder() / f"airflow-{version('apache-airflow-core')}-{digest}.db"


def templates_folder() -> Path:
    return Path(os.environ.get("LAKEHOUSE_DB_TEMPLATES") or Path(sys.prefix) / "lakehouse-db-templates")


def copy_whole(source: Path, target: Path) -> None:
    """`source` copied to `target` whole or not at all (also with two copies at once)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.part")
    shutil.copyfile(source, partial)
    os.replace(partial, target)


def keep_template(db: Path, template: Path) -> None:
    """A freshly made `db` kept as `template`; a DB with a write-ahead log still beside it is not."""
    if db.exists() and not Path(f"{db}-wal").exists():
        copy_whole(db, template)


def mlflow_store_template() -> Path:
    """Where a freshly created MLflow store (migrated, with the project's experiment) is kept,
    like db_template: keyed by MLflow's version, the experiment, its artifact location and the
    working folder (MLflow's Default experiment records ./mlruns resolved against it)."""
    from importlib.metadata import version

    from include.lakehouse.ml import settings as ml

    key = repr((ml.EXPERIMENT, ml.artifact_location(), os.getcwd()))
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return templates_folder() / f"mlflow-{version('mlflow')}-{digest}.db"


def ensure_mlflow_store() -> str:
    """The project's MLflow store: a new local SQLite store is a copy of mlflow_store_template
    when there is one (MLflow's import, migrations and experiment: ~4 s of CPU at start-up),
    else created through mlflow_client() and kept as the template; an existing store is opened
    (mlflow_client: the experiment is created if missing). Returns what was done."""
    from include.lakehouse.ml import settings as ml

    db = sqlite_path(ml.tracking_uri())
    fresh = db is not None and not db.exists()
    template = mlflow_store_template() if db is not None else None
    if fresh and template.exists():
        with ml.store_initialisation():  # the lock a process creating the store holds
            if not db.exists():
                copy_whole(template, db)
                return "copied"
    from include.lakehouse.ml.training import mlflow_client

    mlflow_client()
    if fresh:
        keep_template(db, template)
    return "created" if fresh or db is None else "opened"


def migrate_airflow_db(env: dict[str, str], logs: Path) -> str:
    """`airflow db migrate`, or - for a DB that does not exist yet - a copy of the migrated empty
    DB kept by an earlier migration (db_template: ~5 s of CPU saved at every fresh start).
    Returns what was done."""
    db = sqlite_path(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    fresh = db is not None and not db.exists()
    template = db_template(env)
    if fresh and template.exists():
        copy_whole(template, db)
        return "copied"
    run_quiet([str(localenv.VENV_BIN / "airflow"), "db", "migrate"], env, "airflow db migrate", logs / "db-migrate.log")
    if fresh:
        keep_template(db, template)
    return "migrated"


def migrate(env: dict[str, str], ready: Path | None = None) -> None:
    """The Airflow metadata DB migrated (a fresh one: copied from db_template when there is one)
    and, beside it, the MLflow store created (migrated, with the project's experiment): left to
    the first ML task, its migration ran on the demo's critical path (the first drift check). A
    store that cannot be created here is reported, not fatal: the first ML task tries again and
    fails with MLflow's own error. `ready`: a file created as soon as the Airflow DB is ready
    (Airflow's components may start), before the MLflow store is."""
    logs = Path(env["AIRFLOW_HOME"]) / "logs" / "components"
    logs.mkdir(parents=True, exist_ok=True)
    say("migrating the Airflow metadata DB (SQLite) and creating the MLflow store ...")
    ml_log = logs / "mlflow-store.log"
    with ml_log.open("w") as out:
        ml_store = subprocess.Popen([sys.executable, "-c", ML_STORE], env={**os.environ, **env}, stdout=out,
                                    stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            migrate_airflow_db(env, logs)
            if ready is not None:
                ready.touch()
        finally:
            code = ml_store.wait()
    if code != 0:
        say(f"the MLflow store was not created (exit {code}; see {ml_log}): the first ML task will try again")


def save_db_template() -> Path:
    """`make install`: an empty metadata DB migrated and an MLflow store created in a scratch
    folder, kept as db_template and mlflow_store_template (a first `make demo` copies both)."""
    env = localenv.airflow_env()
    with tempfile.TemporaryDirectory() as scratch:
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{scratch}/airflow.db"
        migrate_airflow_db(env, Path(scratch))
        run_quiet([sys.executable, "-c", ML_STORE], {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{scratch}/mlflow.db"},
                  "creating the MLflow store", Path(scratch) / "mlflow-store.log")
    return db_template(env)


def use_env(env: dict[str, str]) -> None:
    """This process sees the components' Airflow (before it imports Airflow), quietly."""
    localenv.apply(env)
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"  # this process only: keep the demo output readable


def init(env: dict[str, str], migrated: bool = False) -> None:
    """Migrate the metadata DB (unless done) and load airflow_settings.yaml into it."""
    if not migrated:
        migrate(env)
    use_env(env)
    counts = load_settings()
    say(f"loaded airflow_settings.yaml: {counts['connections']} connections, {counts['pools']} pools, "
        f"{counts['variables']} variables")


def prepare(load: bool = True) -> tuple[dict[str, str], int]:
    """Check the machine, migrate the DB, load settings (`load=False`: only check; the caller
    runs `init` when it suits it); returns the components' env and API port.

    The env announces the warm Spark Connect server the caller starts, so local[*] Spark tasks
    use it instead of a cold spark-submit, and the embedded broker's port (env beats the DB)."""
    env = localenv.airflow_env()
    port = int(env["AIRFLOW__API__PORT"])
    preflight(env, {"Airflow API": port, "Spark Connect": spark_connect_port(), "Kafka": kafka_port()})
    if load:
        init(env)
    env["LAKEHOUSE_SPARK_CONNECT_URL"] = f"sc://127.0.0.1:{spark_connect_port()}"
    env.setdefault("LAKEHOUSE_FORMAT_BENCH_ROWS", "20000")  # format_benchmark at demo size (bench: 1M)
    env["AIRFLOW_CONN_KAFKA_DEFAULT"] = json.dumps({"conn_type": "kafka", "extra": {
        "bootstrap.servers": f"127.0.0.1:{kafka_port()}", "group.id": "lakehouse"}})
    return env, port
