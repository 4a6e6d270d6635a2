"""SparkJobOperator: run a job file of include/spark_jobs/ wherever the connection says.

- `spark_default` of type `spark` (master local[*], spark://..., yarn, k8s://...): the
  provider's SparkSubmitOperator runs `spark-submit`, with the Delta jars of
  LAKEHOUSE_DELTA_JARS (baked into the image by the Dockerfile) and the Delta extension when
  that folder holds them. When the master is local and a warm Spark Connect server is
  announced in LAKEHOUSE_SPARK_CONNECT_URL (make demo / make ui start Sail), the job runs
  in-process against it instead (bench/results `spark_engines` has the numbers).
- type `spark_connect`: in-process against that Spark Connect server.
- type `databricks`: DatabricksSubmitRunOperator with a spark_python_task for the same
  file (workspace path and cluster from the connection extras).
`warm_connect=False` keeps a job off the warm server: Structured Streaming jobs with
`foreachBatch` (Sail 0.7 does not run it) use spark-submit on the local master instead.
`kafka_conn_id` hands that Kafka connection's client settings to the job as the environment
variable LAKEHOUSE_KAFKA_CONFIG (JSON), never as an argument (visible in process lists).
The task's XCom is the dict the job's main() returned.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from lakehouse_airflow.lineage import LakehouseLineageMixin
from lakehouse_airflow.ui.links import TablePageLink

PROJECT_ROOT = Path(__file__).resolve().parents[3]


class SparkJobOperator(LakehouseLineageMixin, SparkSubmitOperator):
    ui_color = "#f4a460"
    operator_extra_links = (TablePageLink(),)

    def __init__(self, *, job: str, job_args: list[Any] | None = None, conn_id: str = "spark_default",
                 warm_connect: bool = True, kafka_conn_id: str | None = None, **kwargs: Any) -> None:
        self.job = job
        self.warm_connect = warm_connect
        self.kafka_conn_id = kafka_conn_id
        application = str(PROJECT_ROOT / "include" / "spark_jobs" / (job if job.endswith(".py") else f"{job}.py"))
        kwargs.setdefault("name", f"lakehouse-{Path(application).stem}")
        super().__init__(application=application, application_args=job_args or [], conn_id=conn_id, **kwargs)

    @property
    def table(self) -> str:
        """The first table the job writes (its extra link's table page)."""
        return (self.lineage_tables()[1] or [""])[0]

    def lineage_tables(self) -> tuple[list[str], list[str]]:
        from include.lakehouse.spark.jobs import job_tables

        return job_tables(self.job)

    def backend(self) -> tuple[str, str | None]:
        """('submit' | 'connect' | 'databricks', connect url)."""
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(self._conn_id)
        if conn.conn_type == "databricks":
            return "databricks", None
        if conn.conn_type == "spark_connect":
            from airflow.providers.apache.spark.hooks.spark_connect import SparkConnectHook

            return "connect", SparkConnectHook(conn_id=self._conn_id).get_connection_url()
        warm = os.environ.get("LAKEHOUSE_SPARK_CONNECT_URL") if self.warm_connect else None
        if warm and (conn.host or "").startswith("local"):
            return "connect", warm
        return "submit", None

    def execute(self, context) -> dict[str, Any]:
        from lakehouse_airflow import reports

        result = self._run(context)
        return {**result, **reports.spark_job(self.job, result)}

    def _run(self, context) -> dict[str, Any]:
        kind, url = self.backend()
        self.log.info("Spark job %s runs via %s%s", self.job, kind, f" ({url})" if url else "")
        if self.kafka_conn_id:
            from airflow.sdk import BaseHook

            kafka = json.dumps(BaseHook.get_connection(self.kafka_conn_id).extra_dejson)
            self.env_vars = {**(self.env_vars or {}), "LAKEHOUSE_KAFKA_CONFIG": kafka}
            os.environ["LAKEHOUSE_KAFKA_CONFIG"] = kafka  # the in-process (Connect) route
        if kind == "connect":
            return self._run_connect(url)
        if kind == "databricks":
            return self._run_databricks(context)
        with tempfile.TemporaryDirectory() as scratch:
            result_file = Path(scratch) / "result.json"
            self.env_vars = {**(self.env_vars or {}), "LAKEHOUSE_JOB_RESULT_FILE": str(result_file),
                              "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
            self._with_delta_jars()
            self._hook = None  # built per execution, with the result file in its environment
            super().execute(context)
            return json.loads(result_file.read_text()) if result_file.exists() else {}

    def _with_delta_jars(self) -> None:
        from include.lakehouse.spark.session import DELTA_CATALOG, DELTA_EXTENSION, delta_jars

        jars = delta_jars()
        if not jars or os.environ.get("LAKEHOUSE_SPARK_DELTA", "auto").lower() == "bridge":
            return
        self.jars = ",".join(filter(None, [self.jars, *jars]))
        self.conf = {"spark.sql.extensions": DELTA_EXTENSION, "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
                     **(self.conf or {})}

    def _run_connect(self, url: str) -> dict[str, Any]:
        from include.lakehouse.spark.jobs import load_job
        from include.lakehouse.spark.session import get_spark

        spark = get_spark(app_name=self.job, remote=url)
        return load_job(self.job).main(spark, [str(a) for a in self.application_args or []]) or {}

    def _run_databricks(self, context) -> dict[str, Any]:
        from airflow.providers.databricks.operators.databricks import DatabricksSubmitRunOperator
        from airflow.sdk import BaseHook

        extras = BaseHook.get_connection(self._conn_id).extra_dejson
        workspace = extras.get("jobs_path", "/Workspace/Shared/lakehouse/include/spark_jobs")
        task: dict[str, Any] = {
            "task_key": self.task_id,
            "spark_python_task": {
                "python_file": f"{workspace}/{Path(self.application).name}",
                "parameters": [str(a) for a in self.application_args or []],
            },
        }
        if extras.get("existing_cluster_id"):
            task["existing_cluster_id"] = extras["existing_cluster_id"]
        else:
            task["new_cluster"] = extras.get("new_cluster", {"spark_version": "15.4.x-scala2.12", "num_workers": 1})
        DatabricksSubmitRunOperator(
            task_id=f"{self.task_id}_databricks", databricks_conn_id=self._conn_id, json={"tasks": [task]},
        ).execute(context)
        return {"backend": "databricks", "job": self.job}
