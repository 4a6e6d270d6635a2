"""dbt_transform through Airflow: Cosmos' WATCHER mode (one producer task runs `dbt build`, one
sensor task per source, model and model's tests). A failing dbt test fails its own model's test
task with dbt's message, what depends on it does not run, other branches carry on; only the
producer holds the `dbt` pool."""

from __future__ import annotations

import json
from pathlib import Path

from tests.transform.conftest import negative_amount, shop_lakehouse  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[2]
PRODUCER = "dbt.dbt_producer_watcher"


def _dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(ROOT / "dags" / "dbt_transform.py"))
    assert not bag.import_errors
    return bag.dags["dbt_transform"]


def _serial(dag):
    """dag.test() runs one task at a time and each deferred sensor's trigger inline, so a sensor
    started before the producer would wait forever; a scheduler runs them side by side. Here the
    producer goes first and the first sensors run when it is done, whatever its result."""
    from cosmos.operators._watcher.base import BaseConsumerSensor

    producer = dag.get_task(PRODUCER)
    for task in dag.tasks:
        task.retries = 0
        if isinstance(task, BaseConsumerSensor) and task.upstream_task_ids == {"check_sources"}:
            producer >> task
            task.trigger_rule = "all_done"
    # dag.test() of a run with deadlines looks the alerts up by id, but an unserialized DAG holds
    # the alert objects (Airflow 3.3.2): the deadlines are tested in test_alert_canary
    dag.deadline = None
    return dag


def test_one_dbt_build_in_the_pool_and_a_task_per_model():
    from cosmos.operators.watcher import DbtProducerWatcherOperator

    dag = _dag()
    manifest = json.loads((ROOT / "include" / "dbt" / "target" / "manifest.json").read_text())
    models = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    tested = {manifest["nodes"][p]["name"] for n in manifest["nodes"].values() if n["resource_type"] == "test"
              for p in n["depends_on"]["nodes"] if len(n["depends_on"]["nodes"]) == 1}
    ids = set(dag.task_ids)
    assert {f"dbt.{m}.run" for m in models} <= ids and {f"dbt.{m}.test" for m in tested} <= ids
    assert {"dbt.silver_orders_source", "dbt.silver_customers_source", "dbt.silver_products_source"} <= ids
    in_pool = [t.task_id for t in dag.tasks if t.pool == "dbt"]
    assert in_pool == [PRODUCER] and isinstance(dag.get_task(PRODUCER), DbtProducerWatcherOperator)
    sensors = [t for t in dag.tasks if t.task_id.startswith("dbt.") and t.task_id != PRODUCER
               and not t.task_id.endswith("_done")]
    assert sensors and all(s.deferrable and s.poke_interval <= 2 for s in sensors)
    # the sensors watch the build as it runs: none waits for the producer task to finish
    assert not any(PRODUCER in s.upstream_task_ids for s in sensors)


def test_failing_dbt_test_fails_its_model_task_only(airflow_db, shop_lakehouse, capfd):
    negative_amount(shop_lakehouse)
    run = _serial(_dag()).test()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "failed"
    assert states[PRODUCER] == "failed"  # `dbt build` exits 1
    assert states["dbt.stg_shop__orders.run"] == "success"
    assert states["dbt.stg_shop__orders.test"] == "failed"
    assert states["dbt.int_orders__customer_at_order.run"] == "upstream_failed"
    # the other branches, and the model whose cross-model tests could not run, carry on
    assert states["dbt.stg_shop__products.run"] == states["dbt.stg_shop__products.test"] == "success"
    assert states["dbt.stg_shop__customer_versions.test"] == "success"
    assert states["dbt.dim_customers_current.test"] == "success"
    assert states["dbt.silver_orders_source"] == "success"  # freshness: a visible check of its own
    assert {t for t, s in states.items() if s == "failed"} == {PRODUCER, "dbt.stg_shop__orders.test"}
    out = capfd.readouterr()
    assert "non_negative_stg_shop__orders_amount" in out.out + out.err


def test_dbt_from_its_own_executable_runs_as_a_subprocess(airflow_db, shop_lakehouse, monkeypatch):
    """DBT_EXECUTABLE_PATH (dbt in a separate virtualenv, the databricks target's way) makes
    Cosmos run that dbt as a subprocess; here it is this environment's own dbt."""
    import sys

    from cosmos.constants import InvocationMode

    executable = str(Path(sys.executable).with_name("dbt"))
    monkeypatch.setenv("DBT_EXECUTABLE_PATH", executable)
    dag = _dag()
    producer = dag.get_task(PRODUCER)
    assert producer.invocation_mode == InvocationMode.SUBPROCESS and producer.dbt_executable_path == executable
    run = _serial(dag.partial_subset(["dbt.stg_shop__products.test", PRODUCER], include_upstream=True,
                                     include_downstream=False)).test()
    assert {ti.task_id: ti.state for ti in run.get_task_instances()} == {
        "check_sources": "success", PRODUCER: "success", "dbt.silver_products_source": "success",
        "dbt.stg_shop__products.run": "success", "dbt.stg_shop__products.test": "success"}
