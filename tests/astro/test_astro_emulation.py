"""The proof that `astro dev start` works on a fresh clone, without Docker: tests/astro/emulation.py
starts the project's Astro containers as processes (one per component, each with its own disk,
a fresh export bind-mounted, the compose's environment, Postgres, a Kafka that does not
auto-create topics), runs the pipeline DAGs, feature_build and train_model (a real champion in
the MLflow registry on the shared volume), restarts every component and runs again.
`make astro-check` runs it; it is marked `astro` (minutes: dbt's tasks and a Spark job)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def emulation(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("astro")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LAKEHOUSE", "DBT_"))}
    proc = subprocess.run([sys.executable, "-m", "tests.astro.emulation", str(work)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return {**json.loads((work / "result.json").read_text()), "work": work, "log": proc.stdout}


@pytest.mark.astro
def test_pipeline_runs_end_to_end_under_the_astro_components(emulation):
    assert emulation["first_run"] == {d: "success" for d in emulation["first_run"]}, emulation["log"]
    # dbt_transform rendered its dbt tasks from the manifest the image built, in every component
    assert emulation["manifest_tasks"]["total"] > 10 and emulation["manifest_tasks"]["failed"] == []
    tables = emulation["tables_before"]
    for table in ("bronze/shop.order_events", "silver/orders", "gold/dim_customer", "gold/fct_orders",
                  "features/customer_features"):
        assert tables.get(table, 0) > 0, tables


@pytest.mark.astro
def test_train_model_registers_a_champion_in_the_registry_on_the_shared_volume(emulation):
    assert emulation["train_model"] == {"train_model": "success"}, emulation["log"]
    registry = emulation["registry_before"]
    # the components' tracking store is MLflow's SQLite file on the lakehouse_state volume
    assert Path(registry["store"]).is_relative_to((emulation["work"] / "volumes" / "lakehouse_state").resolve())
    # cold start: a baseline on the window before the newest is champion, the newest model challenger
    assert registry["versions"] == ["1", "2"] and registry["champion"]["version"] == "1"
    assert registry["challenger"] == "2"
    assert registry["champion"]["status"] == "READY" and "champion" in registry["champion"]["aliases"]


@pytest.mark.astro
def test_tables_registry_and_alerts_survive_a_restart_of_every_component(emulation):
    assert emulation["tables_after_restart"] == emulation["tables_before"]
    # train_model on the fresh deployment (ended before the source started) skipped and alerted
    assert emulation["fresh_train"] == "success"
    assert any("train_model/astro__train_fresh/training_skipped" in line for line in emulation["alerts_before"]), \
        emulation["alerts_before"]
    assert emulation["alerts_after_restart"] == emulation["alerts_before"]
    after = emulation["registry_after_restart"]
    assert {k: after[k] for k in ("versions", "champion", "challenger")} == \
        {k: emulation["registry_before"][k] for k in ("versions", "champion", "challenger")}
    # the champion's artifacts are there too: it loads, from the run that trained it
    assert after["champion_loaded_run_id"] == after["champion"]["run_id"]


@pytest.mark.astro
def test_a_second_run_after_the_restart_changes_nothing(emulation):
    assert set(emulation["second_run"].values()) == {"success"}, emulation["second_run"]
    assert emulation["tables_after_second_run"] == emulation["tables_before"]
    assert emulation["registry_after_second_run"]["versions"] == emulation["registry_before"]["versions"]
    assert emulation["registry_after_second_run"]["champion"] == emulation["registry_before"]["champion"]
