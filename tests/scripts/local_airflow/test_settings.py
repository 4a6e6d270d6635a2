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


def test_migrate_also_creates_the_mlflow_store(tmp_path, monkeypatch):
    """The MLflow store (SQLite, migrated, with the experiment) is made beside the Airflow DB at
    start-up, not by the first ML task on the demo's critical path."""
    import sqlite3

    from include.lakehouse.ml.settings import EXPERIMENT
    from scripts import localenv
    from scripts.local_airflow.settings import migrate

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    lakehouse = tmp_path / "state" / "lakehouse"
    env = {**localenv.airflow_env(home=tmp_path / "airflow"), "LAKEHOUSE_ROOT": str(lakehouse)}
    migrate(env)
    store = tmp_path / "state" / "mlflow" / "mlflow.db"
    with sqlite3.connect(store) as con:
        names = [r[0] for r in con.execute("SELECT name FROM experiments")]
    assert EXPERIMENT in names, names
    assert (tmp_path / "airflow" / "airflow.db").exists()


def test_a_fresh_metadata_db_is_a_copy_of_the_first_migration(tmp_path, monkeypatch):
    """The first migration of an empty DB is kept (db_template); the next fresh DB is a copy of
    it - no `airflow db migrate` - and Airflow sees it migrated to its own head. An existing DB is
    always migrated for real (an upgrade must run its migrations)."""
    import sqlite3
    import subprocess
    import sys

    from scripts import localenv
    from scripts.local_airflow import settings

    monkeypatch.setenv("LAKEHOUSE_DB_TEMPLATES", str(tmp_path / "templates"))
    first = localenv.airflow_env(home=tmp_path / "a")
    assert settings.migrate_airflow_db(first, tmp_path) == "migrated"
    template = settings.db_template(first)
    assert template.exists()

    second = localenv.airflow_env(home=tmp_path / "b")  # other home, keys and DB path: the same template
    assert settings.db_template(second) == template
    calls = []
    monkeypatch.setattr(settings, "run_quiet", lambda *a, **k: calls.append(a))
    assert settings.migrate_airflow_db(second, tmp_path) == "copied" and calls == []
    db = settings.sqlite_path(second["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    with sqlite3.connect(db) as con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"alembic_version", "dag", "dag_run", "task_instance", "slot_pool"} <= tables
    check = subprocess.run([str(localenv.VENV_BIN / "airflow"), "db", "check-migrations", "-t", "1"],
                           env={**__import__("os").environ, **second}, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr[-2000:]
    assert settings.migrate_airflow_db(second, tmp_path) == "migrated" and len(calls) == 1  # exists: real migrate

    assert settings.db_template({**second, "AIRFLOW__CORE__PARALLELISM": "3"}) == template  # not in the schema
    assert settings.db_template({**second, "AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT": "7"}) != template


def test_a_fresh_mlflow_store_is_a_copy_of_the_first_one_created(tmp_path, monkeypatch):
    """The first MLflow store created (migrated, with the experiment) is kept; the next new store
    is a copy - MLflow neither imported nor migrated - and works as the project's store."""
    from include.lakehouse.ml.settings import EXPERIMENT
    from scripts.local_airflow import settings

    monkeypatch.setenv("LAKEHOUSE_DB_TEMPLATES", str(tmp_path / "templates"))
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(tmp_path / "state" / "lakehouse"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'first.db'}")
    assert settings.ensure_mlflow_store() == "created"
    assert settings.mlflow_store_template().exists()

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'second.db'}")
    monkeypatch.setattr("include.lakehouse.ml.training.mlflow_client", lambda: (_ for _ in ()).throw(AssertionError))
    assert settings.ensure_mlflow_store() == "copied"
    monkeypatch.undo()
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(tmp_path / "state" / "lakehouse"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'second.db'}")
    from include.lakehouse.ml.training import mlflow_client

    client = mlflow_client()  # the copy is a working, migrated store with the experiment
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None and experiment.artifact_location.startswith((tmp_path / "state").as_uri())
    assert settings.ensure_mlflow_store() == "opened"  # an existing store is opened, never replaced
