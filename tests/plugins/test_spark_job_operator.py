"""SparkJobOperator: the same job file through spark-submit on local[*] and, by changing only
the spark_default connection, on a real Spark standalone cluster (master + worker on loopback).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from include.lakehouse.maintenance.operations import read_table
from include.lakehouse.quality.smoke import append_smoke_orders
from lakehouse_airflow.operators.spark_job import SparkJobOperator

SPARK_HOME = Path(__import__("pyspark").__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spark_connection(monkeypatch, host: str, port: int | None = None) -> None:
    conn = {"conn_type": "spark", "host": host, "extra": {"deploy-mode": "client"}}
    if port:
        conn["port"] = port
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps(conn))
    monkeypatch.delenv("LAKEHOUSE_SPARK_CONNECT_URL", raising=False)


def revenue_by_status() -> dict[str, int]:
    return {r["status"]: r["orders"] for r in read_table("gold/smoke_revenue_by_status").to_pylist()}


def run_job() -> dict:
    operator = SparkJobOperator(task_id="compute_revenue_by_status_in_spark", job="smoke_revenue_by_status")
    return operator.execute(context={})


def test_backend_follows_the_connection(monkeypatch):
    operator = SparkJobOperator(task_id="compute_revenue_by_status_in_spark", job="smoke_revenue_by_status")
    spark_connection(monkeypatch, "local[*]")
    assert operator.backend() == ("submit", None)
    monkeypatch.setenv("LAKEHOUSE_SPARK_CONNECT_URL", "sc://127.0.0.1:15002")
    assert operator.backend() == ("connect", "sc://127.0.0.1:15002")
    spark_connection(monkeypatch, "spark://127.0.0.1", 7077)
    monkeypatch.setenv("LAKEHOUSE_SPARK_CONNECT_URL", "sc://127.0.0.1:15002")
    assert operator.backend() == ("submit", None)  # a cluster master is never short-circuited
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "databricks", "host": "x"}))
    assert operator.backend()[0] == "databricks"


def test_job_runs_through_spark_submit_on_local(lakehouse_root, monkeypatch):
    spark_connection(monkeypatch, "local[2]")
    append_smoke_orders("2024-01-03")
    result = run_job()
    assert result["source_rows"] > 0 and result["rows_inserted"] == len(revenue_by_status())
    assert sum(revenue_by_status().values()) == result["source_rows"]


@pytest.fixture()
def standalone_cluster(tmp_path):
    master_port, master_ui, worker_ui = free_port(), free_port(), free_port()
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOG_DIR": str(tmp_path),
           "SPARK_WORKER_DIR": str(tmp_path / "work")}
    procs = [subprocess.Popen([spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                               "--port", str(master_port), "--webui-port", str(master_ui)],
                              env=env, stdout=(tmp_path / "master.log").open("w"), stderr=subprocess.STDOUT)]
    procs.append(subprocess.Popen([spark_class, "org.apache.spark.deploy.worker.Worker",
                                   f"spark://127.0.0.1:{master_port}", "--cores", "1", "--memory", "1g",
                                   "--webui-port", str(worker_ui), "--host", "127.0.0.1"],
                                  env=env, stdout=(tmp_path / "worker.log").open("w"), stderr=subprocess.STDOUT))
    state_url = f"http://127.0.0.1:{master_ui}/json/"
    deadline = time.time() + 90
    while True:
        try:
            with urllib.request.urlopen(state_url, timeout=2) as r:
                if json.load(r).get("aliveworkers", 0) >= 1:
                    break
        except OSError:
            pass
        if time.time() > deadline:
            raise RuntimeError("Spark standalone cluster did not come up:\n" + (tmp_path / "master.log").read_text()[-2000:])
        time.sleep(1)
    yield master_port, state_url
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=30)


@pytest.mark.spark_cluster
def test_same_job_runs_on_a_standalone_cluster_by_changing_only_the_connection(lakehouse_root, monkeypatch,
                                                                             standalone_cluster):
    master_port, state_url = standalone_cluster
    append_smoke_orders("2024-01-04")
    spark_connection(monkeypatch, "spark://127.0.0.1", master_port)
    result = run_job()
    assert sum(revenue_by_status().values()) == result["source_rows"] > 0
    with urllib.request.urlopen(state_url, timeout=5) as r:
        apps = json.load(r)
    finished = apps.get("completedapps", []) + apps.get("activeapps", [])
    assert any(app["name"] == "lakehouse-smoke_revenue_by_status" for app in finished), apps


def test_spark_submit_gets_the_baked_delta_jars(monkeypatch, tmp_path):
    from include.lakehouse.spark.session import DELTA_EXTENSION

    operator = SparkJobOperator(task_id="t", job="smoke_revenue_by_status")
    monkeypatch.delenv("LAKEHOUSE_DELTA_JARS", raising=False)
    operator._with_delta_jars()
    assert not operator.jars and not operator.conf  # jar-free: the bridge does Delta
    (tmp_path / "delta-spark_2.13-4.4.1.jar").write_bytes(b"")
    monkeypatch.setenv("LAKEHOUSE_DELTA_JARS", str(tmp_path))
    operator._with_delta_jars()
    assert operator.jars == str(tmp_path / "delta-spark_2.13-4.4.1.jar")
    assert operator.conf["spark.sql.extensions"] == DELTA_EXTENSION


def run_job_via_warm_connect(url: str) -> dict:
    """In a spawned child (a Connect session rules out classic ones in its process)."""
    os.environ["AIRFLOW_CONN_SPARK_DEFAULT"] = json.dumps({"conn_type": "spark", "host": "local[*]"})
    os.environ["LAKEHOUSE_SPARK_CONNECT_URL"] = url
    return run_job()


def test_local_task_runs_on_the_warm_sail_server_with_native_delta(lakehouse_root, sail_url):
    from deltalake import DeltaTable

    from tests.processes import race

    append_smoke_orders("2024-01-05")
    [(status, result)] = race("tests.plugins.test_spark_job_operator.run_job_via_warm_connect", [((sail_url,), {})])
    assert status == "ok", result
    assert result["details"]["engine_delta"] == "native"
    assert sum(revenue_by_status().values()) == result["source_rows"] > 0
    assert DeltaTable(str(lakehouse_root / "gold" / "smoke_revenue_by_status")).history(1)[0]["engineInfo"].startswith("sail")


def test_streaming_jobs_stay_off_the_warm_connect_server(monkeypatch):
    """Sail runs no foreachBatch: a job with warm_connect=False is spark-submitted even when a warm
    server is announced."""
    operator = SparkJobOperator(task_id="aggregate_order_events_into_windows", job="stream_order_events",
                                warm_connect=False)
    spark_connection(monkeypatch, "local[*]")
    monkeypatch.setenv("LAKEHOUSE_SPARK_CONNECT_URL", "sc://127.0.0.1:15002")
    assert operator.backend() == ("submit", None)


def chain_tables() -> dict[str, list[tuple]]:
    from include.lakehouse.tables.delta import open_table

    out = {}
    for name in ("silver/customers", "gold/dim_customer"):
        data = open_table(name).to_pyarrow_table()
        data = data.select(sorted(data.column_names))
        out[name] = sorted(tuple(str(v) for v in row.values()) for row in data.to_pylist())
    return out


@pytest.mark.slow
@pytest.mark.spark_cluster
def test_cdc_and_scd2_jobs_on_a_standalone_cluster_make_the_delta_rs_tables(lakehouse_root, monkeypatch,
                                                                           standalone_cluster, tmp_path):
    """The cdc_apply and scd2 jobs, spark-submitted to the cluster (the bridge: no Delta jars on
    it), write the same silver and gold tables as the delta-rs path, surrogate keys included."""
    from include.lakehouse.cdc.flow import apply_bronze_changes
    from include.lakehouse.dimensions.build import build_dimension
    from tests.spark.test_jobs import cdc_inputs

    cdc_inputs()
    master_port, _ = standalone_cluster
    spark_connection(monkeypatch, "spark://127.0.0.1", master_port)
    cdc = SparkJobOperator(task_id="cdc", job="cdc_apply", job_args=["customers"]).execute(context={})
    SparkJobOperator(task_id="scd2", job="scd2", job_args=["dim_customer"]).execute(context={})
    assert cdc["tables"][0]["details"]["engine"] == "spark"
    on_cluster = chain_tables()
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(tmp_path / "delta-rs"))
    cdc_inputs()
    apply_bronze_changes("customers")
    build_dimension("dim_customer")
    assert chain_tables() == on_cluster and len(on_cluster["gold/dim_customer"]) == 4  # key 2 deleted
