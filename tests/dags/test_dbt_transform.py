"""dbt_transform through Airflow (`dag.test()`: real task instances in the metadata DB): a failing
dbt test fails its own task with dbt's message, what depends on it does not run, other
branches carry on."""

from __future__ import annotations

from pathlib import Path

from tests.transform.conftest import negative_amount, shop_lakehouse  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[2]


def test_failing_dbt_test_fails_its_task_and_only_its_downstream(airflow_db, shop_lakehouse, capfd):
    from airflow.dag_processing.dagbag import DagBag

    negative_amount(shop_lakehouse)
    dag = DagBag(str(ROOT / "dags" / "dbt_transform.py")).get_dag("dbt_transform")
    # the orders branch down to the first model that needs it, and the independent products branch
    dag = dag.partial_subset(["dbt.int_orders__customer_at_order.run", "dbt.stg_shop__products.test"],
                             include_upstream=True, include_downstream=False)
    for task in dag.tasks:
        task.retries = 0
    run = dag.test()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "failed"
    assert states["dbt.stg_shop__orders.run"] == "success"
    assert states["dbt.stg_shop__orders.test"] == "failed"
    assert states["dbt.int_orders__customer_at_order.run"] == "upstream_failed"
    assert states["dbt.stg_shop__products.run"] == states["dbt.stg_shop__products.test"] == "success"
    assert states["dbt.stg_shop__customer_versions.test"] == "success"
    out = capfd.readouterr()
    assert "non_negative_stg_shop__orders_amount: Got 1 result, configured to fail if != 0" in out.out + out.err


def test_dbt_from_its_own_executable_runs_as_a_subprocess(airflow_db, shop_lakehouse, monkeypatch):
    """DBT_EXECUTABLE_PATH (dbt in a separate virtualenv, the databricks target's way) makes
    Cosmos run that dbt as a subprocess; here it is this environment's own dbt."""
    import sys

    from airflow.dag_processing.dagbag import DagBag
    from cosmos.constants import InvocationMode

    executable = str(Path(sys.executable).with_name("dbt"))
    monkeypatch.setenv("DBT_EXECUTABLE_PATH", executable)
    dag = DagBag(str(ROOT / "dags" / "dbt_transform.py")).get_dag("dbt_transform")
    model = dag.get_task("dbt.stg_shop__products.run")
    assert model.invocation_mode == InvocationMode.SUBPROCESS and model.dbt_executable_path == executable
    dag = dag.partial_subset(["dbt.stg_shop__products.test"], include_upstream=True, include_downstream=False)
    for task in dag.tasks:
        task.retries = 0
    # dag.test() of a successful run with deadlines looks the alerts up by id, but an unserialized
    # DAG holds the alert objects (Airflow 3.3.2): the deadlines are tested in test_alert_canary
    dag.deadline = None
    run = dag.test()
    assert {ti.task_id: ti.state for ti in run.get_task_instances()} == {
        "check_sources": "success", "dbt.silver_products_source": "success", "dbt.stg_shop__products.run": "success",
        "dbt.stg_shop__products.test": "success"}
