"""The one place a SparkSession is made, and the one place that decides how it does Delta.

Where a session runs is decided, first match wins, by: the arguments; the environment
(SPARK_MASTER, SPARK_REMOTE, SPARK_CONF as JSON); spark-submit or Databricks itself when a
job runs under them; the Airflow connection SPARK_CONN_ID (default `spark_default`: host =
master, e.g. `local[*]` or `spark://host` plus port; extra `remote` = a Spark Connect URL,
extra `conf` = Spark conf, extra `delta` = the Delta mode) when it can be read; otherwise
`local[*]`. Sessions are UTC and read Delta partitions with the table's own types.

Delta mode, configuration only (`delta` argument, LAKEHOUSE_SPARK_DELTA, connection extra
`delta`; default `auto`):
- `native`: the engine has Delta (`format("delta")`, `MERGE INTO delta.\\`path\\``): Sail,
  Databricks, or JVM Spark with the delta-spark jars. Classic JVM sessions get the jars from
  LAKEHOUSE_DELTA_JARS (a folder of jars, what the Dockerfile bakes into the image) or, when
  none is given, from Maven via delta-spark's `configure_spark_with_delta_pip`.
- `bridge`: no Delta in the engine; bridge.py reads the snapshot's parquet files and writes
  through the table layer (delta.py). What a plain cluster without the jars uses.
- `auto`: classic JVM sessions use the jars when LAKEHOUSE_DELTA_JARS holds them, else the
  bridge; any session is asked once whether `format("delta")` exists (Sail and Databricks say yes).
Never runs at DAG parse time; imports Airflow only in connection_target, to read the connection.
"""

from __future__ import annotations

import glob
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
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
DELTA_MODES = ("auto", "native", "bridge")
_MODE_ATTR = "_lakehouse_delta_native"
# what engines say when they have no `delta` data source (JVM Spark, Sail's wording for others)
_NO_DELTA_SOURCE = ("DATA_SOURCE_NOT_FOUND", "Failed to find the data source", "No data source found")


def under_spark_submit() -> bool:
    """True when spark-submit or a Databricks driver started this process (it then owns master/conf)."""
    return ("PYSPARK_GATEWAY_PORT" in os.environ or os.environ.get("SPARK_ENV_LOADED") == "1"
            or "DATABRICKS_RUNTIME_VERSION" in os.environ)


def connection_target(conn_id: str | None = None) -> dict[str, Any]:
    """Master, remote, conf and Delta mode from an Airflow connection (empty when there is none
    or no Airflow).

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
    target = {"master": master, "remote": extra.get("remote"), "conf": dict(conf)}
    if extra.get("delta"):
        target["delta"] = extra["delta"]
    return target


def delta_jars(folder: str | None = None) -> list[str]:
    """The delta-spark jars (and their dependencies) baked into this machine, if any."""
    folder = folder or os.environ.get("LAKEHOUSE_DELTA_JARS")
    return sorted(glob.glob(os.path.join(folder, "*.jar"))) if folder else []


def classic_delta_conf(mode: str, jars: list[str] | None = None) -> tuple[dict[str, str], bool]:
    """Spark conf that gives a classic JVM session native Delta, and whether to ask delta-spark
    for the jars from Maven (`configure_spark_with_delta_pip`). Empty for the bridge."""
    jars = delta_jars() if jars is None else jars
    if mode == "bridge" or (mode == "auto" and not jars):
        return {}, False
    conf = {"spark.sql.extensions": DELTA_EXTENSION, "spark.sql.catalog.spark_catalog": DELTA_CATALOG}
    if jars:
        conf["spark.jars"] = ",".join(jars)
        return conf, False
    return conf, True  # native asked for, no jars here: Maven must be reachable


def check_mode(mode: str | None) -> str:
    mode = (mode or os.environ.get("LAKEHOUSE_SPARK_DELTA") or "auto").lower()
    if mode not in DELTA_MODES:
        raise ValueError(f"Delta mode '{mode}' unknown: use one of {DELTA_MODES} (LAKEHOUSE_SPARK_DELTA or "
                         "the Spark connection's extra `delta`)")
    return mode


def get_spark(app_name: str = "lakehouse", *, master: str | None = None, remote: str | None = None,
              conf: dict[str, Any] | None = None, delta: str | None = None):
    """Return a SparkSession: Spark Connect when `remote`/SPARK_REMOTE is set, else classic."""
    from pyspark.sql import SparkSession

    remote = remote or os.environ.get("SPARK_REMOTE")
    extra = {**json.loads(os.environ.get("SPARK_CONF", "{}")), **(conf or {})}
    if not (remote or master or os.environ.get("SPARK_MASTER") or under_spark_submit()):
        target = connection_target()
        remote, master = target.get("remote"), target.get("master")
        extra = {**target.get("conf", {}), **extra}
        delta = delta or target.get("delta")
    mode = check_mode(delta)
    if remote:
        spark = SparkSession.builder.remote(remote).appName(app_name).getOrCreate()
        for key, value in {**SQL_CONF, **extra}.items():
            if key.startswith("spark.sql."):
                spark.conf.set(key, str(value))
        return _remember(spark, mode)
    builder = SparkSession.builder
    master = master or os.environ.get("SPARK_MASTER")
    if master:
        builder = builder.master(master)
    if not under_spark_submit():  # under spark-submit, --master and --name are the submitter's
        builder = builder.appName(app_name)
        if not master:
            builder = builder.master("local[*]")
        delta_conf, from_maven = classic_delta_conf(mode)
    else:  # the submitter passed the jars (--jars / --packages) or the runtime has them
        delta_conf, from_maven = {}, False
    for key, value in {"spark.ui.enabled": "false", **SQL_CONF, **delta_conf, **extra}.items():
        builder = builder.config(key, str(value))
    if from_maven:
        from delta import configure_spark_with_delta_pip

        builder = configure_spark_with_delta_pip(builder)
    return _remember(builder.getOrCreate(), mode)


def _remember(spark, mode: str):
    if mode != "auto":
        setattr(spark, _MODE_ATTR, mode == "native")
    return spark


def native_delta(spark) -> bool:
    """True when the engine behind `spark` has Delta built in, so format("delta") and MERGE INTO work.

    Decided once per session: the configured mode, else the Delta extension in the session's
    conf, else whether the engine knows the `delta` data source at all (a read of a missing
    path fails with "not found" on an engine with Delta and DATA_SOURCE_NOT_FOUND without).
    """
    known = getattr(spark, _MODE_ATTR, None)
    if known is not None:
        return known
    try:
        native = DELTA_EXTENSION in (spark.conf.get("spark.sql.extensions", "") or "")
    except Exception:  # Connect sessions may refuse to read static confs
        native = False
    if not native:
        native = _engine_has_delta(spark)
    setattr(spark, _MODE_ATTR, native)
    return native


def _engine_has_delta(spark) -> bool:
    import tempfile
    import uuid

    missing = os.path.join(tempfile.gettempdir(), f"lakehouse-delta-probe-{uuid.uuid4().hex}")
    try:
        spark.read.format("delta").load(missing).schema  # noqa: B018 (the schema forces analysis)
    except Exception as exc:  # the message, not the type: classic and Connect raise different classes
        text = str(exc)
        return not any(marker in text for marker in _NO_DELTA_SOURCE)
    return True
