"""The /lakehouse pages without a browser (the login itself is checked in tests/ui): reports
are served only from the paths the ops/ tables recorded, never from a path in the URL."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from include.lakehouse.observability import health
from include.lakehouse.tables.delta import append
from lakehouse_airflow.ui.app import AUTHENTICATED, app


@pytest.fixture()
def client():
    """The app mounted at /lakehouse as the api-server mounts it, the login dependency satisfied."""
    from fastapi import FastAPI

    server = FastAPI()
    server.mount("/lakehouse", app)
    app.dependency_overrides[AUTHENTICATED] = lambda: None
    yield TestClient(server, base_url="http://testserver/lakehouse/")
    app.dependency_overrides.clear()


def test_reports_come_from_the_ops_tables_and_nothing_else(lakehouse_root, tmp_path, client):
    assert client.get("drift/latest").status_code == 404  # nothing recorded yet
    report = tmp_path / "drift_2026-01-01.html"
    report.write_text("<html>drift share 0.08</html>")
    append(health.DRIFT, pa.Table.from_pylist([{"checked_at": datetime.now(timezone.utc), "verdict": "pass",
                                                "report_path": str(report)}]))
    assert "drift share 0.08" in client.get("drift/latest").text

    site = tmp_path / "gx" / "data_docs"
    (site / "validations").mkdir(parents=True)
    (site / "index.html").write_text("<html>suite silver_orders</html>")
    (site / "validations" / "run.html").write_text("<html>one run</html>")
    (tmp_path / "gx" / "secret.txt").write_text("not part of the site")
    health.record_quality({"table": "silver/orders", "version": 3, "action": "passed", "evaluated": 7, "failed": [],
                           "rows": 10, "docs": (site / "index.html").as_uri()}, "silver_orders")
    assert "suite silver_orders" in client.get("quality/silver_orders/docs").text  # redirected to the index
    assert "one run" in client.get("quality/silver_orders/docs/validations/run.html").text
    assert client.get("quality/silver_orders/docs/..%2Fsecret.txt").status_code == 404
    assert client.get("quality/other_suite/docs").status_code == 404

    page = client.get("health").text
    assert "silver_orders" in page and "/lakehouse/quality/silver_orders/docs" in page
    assert client.get("tables/silver/orders").status_code == 200
    assert client.get("tables/nowhere/nothing").status_code == 404


def test_a_task_links_to_its_mlflow_run_and_the_run_page_reads_the_store(tmp_path, monkeypatch, client):
    """Extra link "MLflow run": the run id the task returned -> /lakehouse/mlflow/runs/<id>, a
    page built from the MLflow store (params, metrics, tags, artifacts); no run id -> no run page."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from lakehouse_airflow.ui.links import MlflowRunLink

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.example:8080")
    mlflow.set_tracking_uri(uri)
    store = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = store.create_experiment("runs", artifact_location=(tmp_path / "artifacts").as_uri())
    run = store.create_run(experiment, run_name="drift_2026-01-01", tags={"kind": "drift_check"})
    store.log_param(run.info.run_id, "as_of_date", "2026-01-01")
    store.log_metric(run.info.run_id, "drift_share", 0.08)
    (tmp_path / "report.html").write_text("<html>drift</html>")
    store.log_artifact(run.info.run_id, str(tmp_path / "report.html"), artifact_path="drift")

    class TaskInstance:  # what the task runner hands get_link: the finished task instance
        def __init__(self, value):
            self.value = value

        def xcom_pull(self, key="return_value", **_):
            return self.value

    link = MlflowRunLink()
    assert link.get_link(None, ti_key=TaskInstance({"mlflow_run_id": run.info.run_id})) == (
        f"http://airflow.example:8080/lakehouse/mlflow/runs/{run.info.run_id}")
    assert link.get_link(None, ti_key=TaskInstance({"verdict": "no_champion"})) == ""
    page = client.get(f"mlflow/runs/{run.info.run_id}").text
    assert all(text in page for text in ("drift_2026-01-01", "as_of_date", "2026-01-01", "drift_share", "0.08",
                                         "drift_check", "drift/report.html"))
    assert client.get("mlflow/runs/0123456789abcdef").status_code == 404
    assert client.get("mlflow/runs/..%2Fetc").status_code == 404


def test_the_health_page_shows_bytes_added_per_day_next_to_rows(lakehouse_root, client):
    import re
    from datetime import timedelta

    from include.lakehouse.tables.delta import try_open

    today = datetime.now(timezone.utc).date()
    earlier = [{"table_name": "bronze/orders", "day": (today - timedelta(days=d)).isoformat(), "rows_added": 3,
                "commits": 1} for d in (2, 1)]  # recorded before bytes were measured
    from include.lakehouse.tables.delta import merge_upsert

    merge_upsert(health.VOLUME, pa.Table.from_pylist(earlier), keys=["table_name", "day"])
    append("bronze/orders", pa.table({"order_id": [1, 2, 3], "order_date": ["2026-01-01"] * 3, "amount": [1.0] * 3}))
    size = sum(try_open("bronze/orders").get_add_actions(flatten=True)["size_bytes"].to_pylist())
    health.observe(tables=["bronze/orders"])

    page = client.get("health").text
    row = re.search(r"<tr data-table='bronze/orders'>.*?</tr>", page).group(0)
    assert "bytes added per day" in page and "bytes added today" in page
    assert f"{today.isoformat()}: {health.human_bytes(size)}</title>" in row  # today's bar, in the bytes chart
    assert f"<td>{health.human_bytes(size)}</td>" in row
    assert row.count("<svg class=\"volume\"") == 2 and "not measured" in row  # the older days have rows only
    table = client.get("tables/bronze/orders").text
    assert "bytes added per day" in table and f"{today.isoformat()}: {health.human_bytes(size)}" in table
