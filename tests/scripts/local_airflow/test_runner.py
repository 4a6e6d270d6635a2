"""`make demo` end to end: api-server, scheduler, dag-processor, triggerer, Kafka and Spark Connect,
every project DAG run once through the REST API, and what each DAG wrote."""

from __future__ import annotations

import sqlite3

import pytest
from deltalake import DeltaTable

from tests.scripts.local_airflow.demo_process import ROOT, run_local_airflow


@pytest.mark.airflow
@pytest.mark.timeout(1800)  # every DAG of the project on 2 cores; a busy CI machine needs the margin
def test_demo_runs_every_dag_through_a_real_airflow(tmp_path, monkeypatch):
    result = run_local_airflow(tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    out = result.stdout
    dag_files = sorted(p.stem for p in (ROOT / "dags").glob("*.py")
                       if not p.name.startswith("_") and p.stem != "alert_canary")  # the canary fails on purpose
    assert f"{len(dag_files)}/{len(dag_files)} DAGs succeeded" in out
    assert "spark_smoke: success" in out and "core         " in out  # the family share line
    lakehouse = tmp_path / "lakehouse"
    bronze = DeltaTable(str(lakehouse / "bronze" / "smoke_orders")).to_pyarrow_table()
    by_status = DeltaTable(str(lakehouse / "gold" / "smoke_revenue_by_status")).to_pyarrow_table()
    assert bronze.num_rows > 0 and sum(by_status.column("orders").to_pylist()) == bronze.num_rows
    # ingest: the shop's file and its Kafka topics reached bronze, bad rows reached quarantine
    assert DeltaTable(str(lakehouse / "bronze" / "orders")).count() > 0
    assert DeltaTable(str(lakehouse / "quarantine" / "orders")).count() > 0
    for topic in ["shop.order_events", "shop.public.customers", "shop.public.orders", "shop.public.products"]:
        assert DeltaTable(str(lakehouse / "bronze" / topic)).count() > 0, topic
    assert "delta_maintenance report:" in out and "restore_table" in out
    # CDC and SCD2: Debezium topics became silver current state and gold history
    for table in ["silver/customers", "silver/orders", "silver/products", "gold/dim_customer", "gold/dim_product"]:
        assert DeltaTable(str(lakehouse / table)).count() > 0, table
    # dbt via Cosmos: every model and test task succeeded, the marts were published to gold
    for mart in ["fct_orders", "fct_daily_revenue", "dim_customers_current", "customer_lifetime_value"]:
        assert DeltaTable(str(lakehouse / "gold" / mart)).count() > 0, mart
    assert DeltaTable(str(lakehouse / "gold" / "fct_orders")).count() == DeltaTable(str(lakehouse / "silver" / "orders")).count()
    # the ML loop: features -> drift gate (no champion: retrain) -> cold start: a baseline champion
    # (v1, the window before the newest) and the newest model as challenger (v2) -> gate passes ->
    # scores, explained, shadow-scored by the challenger -> the champion judged on matured labels
    features = DeltaTable(str(lakehouse / "features" / "customer_features")).to_pandas()
    assert features["as_of_date"].nunique() == 3  # the run's day, the newest matured window, the one before
    verdicts = DeltaTable(str(lakehouse / "ops" / "drift_log")).to_pandas().sort_values("checked_at")["verdict"].tolist()
    assert verdicts[0] == "no_champion" and verdicts[-1] == "pass"
    scores = DeltaTable(str(lakehouse / "predictions" / "churn_scores")).to_pandas()
    newest = features[features["as_of_date"] == features["as_of_date"].max()]
    assert len(scores) == len(newest) and set(scores["model_version"]) == {"1"}
    assert "holdout AUC" in out and "scored" in out and "drift check" in out
    # every score explained (top-k SHAP rows), shadow-scored (never served), the evaluation reported
    explanations = DeltaTable(str(lakehouse / "predictions" / "churn_explanations")).to_pandas()
    assert len(explanations) % len(scores) == 0 and set(explanations["model_version"]) == {"1"}
    shadow = DeltaTable(str(lakehouse / "predictions" / "churn_shadow_scores")).to_pandas()
    assert len(shadow) == len(scores) and set(shadow["shadow_model_version"]) == {"2"}
    evaluation = DeltaTable(str(lakehouse / "ops" / "model_evaluation")).to_pandas()
    assert len(evaluation) > 0 and set(evaluation["model_version"]) == {"1"} and evaluation["auc"].notna().all()
    assert "explanations" in out and "shadow: challenger v2 scored" in out and "decision: " in out
    assert all(count in out for count in ("shadow scores", "evaluation rows", "models trained 2"))
    for version in (1, 2):
        assert (tmp_path / "reports" / "models" / f"customer_churn_v{version}.html").exists()
    # Great Expectations ran on every layer; results and data docs are kept
    assert "GX silver_orders:" in out and "GX predictions_churn_scores: passed" in out
    assert (tmp_path / "gx" / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html").exists()
    # multi-format week: gold tables also in Iceberg and Hudi, the benchmark's rows and report
    assert (lakehouse / "warehouse" / "catalog.db").exists()
    assert (lakehouse / "hudi" / "gold" / "fct_orders" / ".hoodie" / "hoodie.properties").exists()
    assert DeltaTable(str(lakehouse / "ops" / "format_publish_log")).count() > 0
    assert DeltaTable(str(lakehouse / "ops" / "format_benchmark")).count() > 0
    assert (tmp_path / "reports" / "formats" / "format_benchmark.md").exists()
    # lineage (OpenLineage file transport): the bronze -> silver -> gold -> features -> predictions chain
    from include.lakehouse.observability import lineage

    graph = lineage.graph_of(lineage.edges_from_events(lineage.read_events(tmp_path / "airflow" / "lineage" / "events.jsonl")))
    chain = lineage.downstream_chain(graph, "bronze/shop.public.customers")
    assert [t for t in chain if t in ("silver/customers", "gold/dim_customer", "features/customer_features",
                                      "predictions/churn_scores")] == ["silver/customers", "gold/dim_customer",
                                                                       "features/customer_features", "predictions/churn_scores"], chain
    assert {"dbt/marts.fct_orders", "ops/model_evaluation"} <= set(chain)
    # the /lakehouse pages show the demo's real data (health: every observed table, run health, quality,
    # drift, models; lineage: the graph) - read from the ops/ tables and the MLflow store, as the api-server does
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from lakehouse_airflow.ui.app import AUTHENTICATED, app

    monkeypatch.setenv("LAKEHOUSE_ROOT", str(lakehouse))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    server = FastAPI()
    server.mount("/lakehouse", app)
    app.dependency_overrides[AUTHENTICATED] = lambda: None
    try:
        pages = TestClient(server, base_url="http://testserver/lakehouse/")
        health_page, lineage_page = pages.get("health").text, pages.get("lineage").text
    finally:
        app.dependency_overrides.clear()
    assert health_page.count("<tr data-table='") >= 20 and "<tr data-table='predictions/churn_scores'>" in health_page
    missing = [section for section in ("dag-runs", "quality", "drift", "models") if f"id='{section}'" not in health_page]
    assert not missing, f"health page sections missing: {missing}\n{out[-3000:]}"
    assert "<tr data-dag='batch_inference'>" in health_page and "/lakehouse/models/2/card" in health_page
    assert "edges" in lineage_page and "features/customer_features" in lineage_page
    with sqlite3.connect(tmp_path / "airflow" / "airflow.db") as con:
        states = dict(con.execute("SELECT dag_id, state FROM dag_run").fetchall())
        spark_smoke_runs = {t for (t,) in con.execute("SELECT run_type FROM dag_run WHERE dag_id = 'spark_smoke'")}
    assert {"lakehouse_smoke", "spark_smoke"} <= set(states) and set(states.values()) == {"success"}
    assert spark_smoke_runs == {"asset_triggered"}  # the scheduler's asset trigger started it, not the runner
