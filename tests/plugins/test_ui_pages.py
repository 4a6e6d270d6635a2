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
