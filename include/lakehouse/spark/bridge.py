"""Delta tables in Spark, with or without the delta-spark jars.

`read_delta` / `write_delta` use native `format("delta")` when the session has the Delta
extension; otherwise they bridge through delta-rs: reads list the snapshot's parquet files
and read them with the table's schema (partition columns cast to their Delta types);
writes hand the rows to the lakehouse operations (append / overwrite_partition / merge /
apply_cdc / apply_scd2) as Arrow, so there is one implementation of each write.
The bridge refuses tables with deletion vectors or column mapping, which plain parquet
reads would get wrong.
"""

from __future__ import annotations

from typing import Any

from include.lakehouse import delta
from include.lakehouse.config import TableSpec, resolve
from include.lakehouse.errors import LakehouseError
from include.lakehouse.results import OperationResult
from include.lakehouse.spark.session import native_delta

_UNSUPPORTED_READER_FEATURES = {"deletionVectors", "columnMapping"}


def _spark_path(uri: str) -> str:
    if uri.startswith("s3://"):
        return "s3a://" + uri[len("s3://"):]
    return uri.removeprefix("file://")


def read_delta(spark, table: "str | TableSpec", *, version: int | None = None):
    """Read a Delta table (optionally at a version) into a Spark DataFrame."""
    uri, _ = resolve(table)
    if native_delta(spark):
        reader = spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(_spark_path(uri))
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    from include.lakehouse.maintenance import _load

    dt = _load(uri, version, None) if version is not None else delta.open_table(uri)
    features = set(dt.protocol().reader_features or [])
    if features & _UNSUPPORTED_READER_FEATURES:
        raise LakehouseError(
            f"table {uri} uses {sorted(features & _UNSUPPORTED_READER_FEATURES)}; reading it needs the "
            "delta-spark jars (spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension)"
        )
    import pyarrow as pa

    arrow_schema = pa.schema(dt.schema().to_arrow())
    schema = from_arrow_schema(arrow_schema)
    files = [_spark_path(f) for f in dt.file_uris()]
    if not files:
        return spark.createDataFrame([], schema)
    # the table's root as delta-rs names its files (a local path through a symlink is resolved)
    frame = spark.read.option("basePath", _spark_path(dt.table_uri)).parquet(*files)
    partition_columns = set(dt.metadata().partition_columns)
    return frame.select(*[
        F.col(f.name).cast(f.dataType).alias(f.name) if f.name in partition_columns else F.col(f.name)
        for f in schema.fields
    ])


def write_delta(df, table: "str | TableSpec", *, mode: str = "append", **options: Any) -> OperationResult:
    """Write a Spark DataFrame to a Delta table.

    mode: "append" (options: app_id, app_version, partition_by), "overwrite_partition"
    (partition or predicate), "merge" (keys, delete_when, update_when), "cdc"
    (apply_cdc options) or "scd2" (apply_scd2 options). The rows are collected to the driver
    as Arrow: right for the tables of this project; very large appends should write with
    native Delta (delta-spark jars) instead.
    """
    writers = {
        "append": delta.append,
        "overwrite_partition": delta.overwrite_partition,
        "merge": delta.merge_upsert,
    }
    if mode == "cdc":
        from include.lakehouse.cdc import apply_cdc as writer
    elif mode == "scd2":
        from include.lakehouse.scd import apply_scd2 as writer
    elif mode in writers:
        writer = writers[mode]
    else:
        raise LakehouseError(f"write_delta: unknown mode '{mode}'; use one of {sorted(writers) + ['cdc', 'scd2']}")
    return writer(table, df.toArrow(), **options)
