"""Astro's own checks on a fresh clone, with no build step: `astro dev parse` (the DAG
integrity test in .astro/) and `astro dev pytest`'s example tests (tests/dags/test_dag_example.py),
each run in its own process on an export of the repository (no manifest, no .local/, no
.venv), in the image's environment (the Dockerfile's ENV with /usr/local/airflow at the export).
A fresh clone used to fail both: dbt_transform could not find include/dbt/target/manifest.json.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.astro.project_files import compose_template, export_project, in_container, read_dockerfile

EXPORT_REF = os.environ.get("ASTRO_CHECK_REF")  # e.g. HEAD~3 to show an older commit failing


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory) -> Path:
    return export_project(tmp_path_factory.mktemp("fresh-clone") / "project", ref=EXPORT_REF)


def image_env(project: Path) -> dict[str, str]:
    """What a process in the project's container sees: the Dockerfile's ENV and the compose's
    common environment (SQLite instead of the compose's Postgres: `astro dev parse` runs alone)."""
    inherited = {k: v for k, v in os.environ.items()
                 if not k.startswith(("AIRFLOW", "LAKEHOUSE", "DBT_", "PYTHONPATH"))}
    common = {k: v for k, v in compose_template()["x-common-env-vars"].items() if "SQL_ALCHEMY_CONN" not in k}
    env = {**inherited, **common, **{k: in_container(v, project) for k, v in read_dockerfile(project).env.items()},
           "AIRFLOW_HOME": str(project), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return env


def run_pytest(project: Path, test_file: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test_file], cwd=project,
                          env=image_env(project), capture_output=True, text=True, timeout=600)


def test_fresh_clone_has_no_build_artefacts(fresh_clone):
    assert not (fresh_clone / "include" / "dbt" / "target").exists() and not (fresh_clone / ".local").exists()
    assert not Path(read_dockerfile(fresh_clone).env["DBT_MANIFEST_PATH"].replace(
        "/usr/local/airflow", str(fresh_clone))).exists()


def test_astro_dev_parse_passes_on_a_fresh_clone(fresh_clone):
    result = run_pytest(fresh_clone, ".astro/test_dag_integrity_default.py")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "dbt_transform.py passed the import test" in result.stdout or "passed" in result.stdout


def test_astro_dev_pytest_examples_pass_on_a_fresh_clone(fresh_clone):
    result = run_pytest(fresh_clone, "tests/dags/test_dag_example.py")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_dbt_dag_without_its_manifest_parses_and_says_what_to_do(airflow_db, tmp_path, monkeypatch):
    """No manifest at DBT_MANIFEST_PATH: the DAG parses with one placeholder task that fails
    with the way out; nothing runs dbt while parsing."""
    from airflow.dag_processing.dagbag import DagBag

    from include.lakehouse.transform import dbt_project

    monkeypatch.setenv("DBT_MANIFEST_PATH", str(tmp_path / "nowhere" / "manifest.json"))
    monkeypatch.setattr(dbt_project, "run_dbt", lambda *a, **k: pytest.fail("dbt ran at parse time"))
    bag = DagBag(str(Path(dbt_project.PROJECT_DIR).parents[1] / "dags" / "dbt_transform.py"))
    assert bag.import_errors == {}
    dag = bag.get_dag("dbt_transform")
    assert {t.task_id for t in dag.tasks} == {"check_sources", "dbt_manifest_missing", "publish_marts"}
    message = dbt_project.missing_manifest_message()
    assert str(tmp_path / "nowhere" / "manifest.json") in message and "astro dev restart" in message


def test_dbt_dag_renders_from_a_manifest_outside_the_mounted_folders(airflow_db, tmp_path, monkeypatch):
    """What the image does: the manifest is built into DBT_MANIFEST_PATH, outside include/."""
    from airflow.dag_processing.dagbag import DagBag

    from include.lakehouse.transform import dbt_project

    manifest = tmp_path / "dbt_manifest" / "manifest.json"
    monkeypatch.setenv("DBT_MANIFEST_PATH", str(manifest))
    assert dbt_project.build_manifest() == manifest and manifest.exists()
    dag = DagBag(str(Path(dbt_project.PROJECT_DIR).parents[1] / "dags" / "dbt_transform.py")).get_dag("dbt_transform")
    assert "dbt.stg_shop__orders.run" in dag.task_ids and "dbt_manifest_missing" not in dag.task_ids
