"""Operator extra links: from a task to its table's page, the data docs of its suite, the drift
report it wrote, the MLflow run it logged, the Lakehouse health page. Each link is a page of the /lakehouse app, which
finds what to show in the registry and ops/ tables (no file paths in links)."""

from __future__ import annotations

import os
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

PREFIX = "/lakehouse"


def page_url(path: str) -> str:
    """Absolute URL of a /lakehouse page on this deployment's api-server ([api] base_url)."""
    base = os.environ.get("AIRFLOW__API__BASE_URL", "").rstrip("/")
    return f"{base}{PREFIX}/{path.lstrip('/')}"


def table_page(table: str) -> str:
    return page_url(f"tables/{quote(table, safe='/')}")


class TablePageLink(BaseOperatorLink):
    """The page of the table the task works on (operator attribute `table`)."""

    name = "Table page"

    def get_link(self, operator, *, ti_key) -> str:
        return table_page(getattr(operator, "table", "") or "")


class DataDocsLink(BaseOperatorLink):
    """The latest Great Expectations data docs of the task's suite."""

    name = "Data docs"

    def get_link(self, operator, *, ti_key) -> str:
        return page_url(f"quality/{quote(getattr(operator, 'suite', ''))}/docs")


class DriftReportLink(BaseOperatorLink):
    """The latest Evidently drift report (from ops/drift_log)."""

    name = "Drift report"

    def get_link(self, operator, *, ti_key) -> str:
        return page_url("drift/latest")


class HealthPageLink(BaseOperatorLink):
    """The Lakehouse health page the task's observation feeds."""

    name = "Lakehouse health"

    def get_link(self, operator, *, ti_key) -> str:
        return page_url("health")


class MlflowRunLink(BaseOperatorLink):
    """The MLflow run the task logged to (`mlflow_run_id` in its result), as a /lakehouse page
    read from the MLflow store; no link when the task logged no run."""

    name = "MLflow run"

    def get_link(self, operator, *, ti_key) -> str:
        # the task runner calls this in the worker with the finished task instance
        result = ti_key.xcom_pull(key="return_value") if hasattr(ti_key, "xcom_pull") else None
        run_id = result.get("mlflow_run_id") if isinstance(result, dict) else None
        return page_url(f"mlflow/runs/{quote(run_id)}") if run_id else ""


ALL_LINKS = [TablePageLink(), DataDocsLink(), DriftReportLink(), HealthPageLink(), MlflowRunLink()]
