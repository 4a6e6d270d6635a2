"""The one place a SparkSession is made.

Where a session runs is decided, first match wins, by: the arguments; the environment
(SPARK_MASTER, SPARK_REMOTE, SPARK_CONF as JSON); spark-submit itself when a job runs under
it; the Airflow connection SPARK_CONN_ID (default `spark_default`: host = master, e.g.
`local[*]` or `spark://host` plus port; extra `remote` = a Spark Connect URL, extra `conf` =
Spark conf) when it can be read; otherwise `local[*]`. Sessions are UTC and read Delta
partitions with the table's own types.
"""

from __future__ import annotations

import json
import os
from typing import Any

# SQL confs every lakehouse session needs; runtime-settable, so they apply to Connect too.
SQL_CONF = {
    "spark.sql.session.timeZone": "UTC",
    # partition values are typed from the Delta schema by the bridge, not guessed by Spark
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.shuffle.partitions": os.environ.get("SPARK_SHUFFLE_PARTITIONS", "4"),
}
DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"


def under_spark_submit() -> bool:
    """True when this Python process was started by spark-submit (it then owns master/conf)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ or os.environ.get("SPARK_ENV_LOADED") == "1"


def connection_target(conn_id: str | None = None) -> dict[str, Any]:
    """Master, remote and conf from an Airflow connection (empty when there is none or no Airflow).

    Read through Airflow's secrets chain (env AIRFLOW_CONN_<ID>, secrets backend, metadata DB),
    so it works inside tasks and in tests; never called at DAG parse time.
    """
    conn_id = conn_id or os.environ.get("SPARK_CONN_ID", "spark_default")
    try:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
    except Exception:  # no Airflow here, or no such connection: the caller falls back to local[*]
        return {}
    extra = conn.extra_dejson or {}
    master = conn.host or None
    if master and conn.port and "://" in master:
        master = f"{master}:{conn.port}"
    conf = extra.get("conf") or {}
    if isinstance(conf, str):
        conf = json.loads(conf)
    return {"master": master, "remote": extra.get("remote"), "conf": dict(conf)}


def get_spark(app_name: str = "lakehouse", *, master: str | None = None, remote: str | None = None,
              conf: dict[str, Any] | None = None):
    """Return a SparkSession: Spark Connect when `remote`/SPARK_REMOTE is set, else classic."""
    from pyspark.sql import SparkSession

    remote = remote or os.environ.get("SPARK_REMOTE")
    extra = {**json.loads(os.environ.get("SPARK_CONF", "{}")), **(conf or {})}
    if not (remote or master or os.environ.get("SPARK_MASTER") or under_spark_submit()):
        target = connection_target()
        remote, master = target.get("remote"), target.get("master")
        extra = {**target.get("conf", {}), **extra}
    if remote:
        spark = SparkSession.builder.remote(remote).appName(app_name).getOrCreate()
        for key, value in {**SQL_CONF, **extra}.items():
            if key.startswith("spark.sql."):
                spark.conf.set(key, str(value))
        return spark
    builder = SparkSession.builder
    master = master or os.environ.get("SPARK_MASTER")
    if master:
        builder = builder.master(master)
    if not under_spark_submit():  # under spark-submit, --master and --name are the submitter's
        builder = builder.appName(app_name)
        if not master:
            builder = builder.master("local[*]")
    for key, value in {"spark.ui.enabled": "false", **SQL_CONF, **extra}.items():
        builder = builder.config(key, str(value))
    return builder.getOrCreate()


def native_delta(spark) -> bool:
    """True when the delta-spark jars and extension are active, so format("delta") works."""
    try:
        return DELTA_EXTENSION in (spark.conf.get("spark.sql.extensions", "") or "")
    except Exception:  # Connect sessions may refuse to read static confs
        return False
