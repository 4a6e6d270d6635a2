"""Delta tables in Spark, native where the engine has Delta, through delta-rs where it has not.

Reads: `format("delta")` on an engine with Delta (Sail, delta-spark jars, Databricks);
otherwise the snapshot's parquet files are read with the table's schema (partition columns
cast to their Delta types). The bridge refuses tables with deletion vectors or column
mapping, which plain parquet reads would get wrong.

Writes, and the rule that keeps one writer per table: the tables Spark jobs produce are
written by the engine itself where it has Delta (`replaceWhere` overwrite, `MERGE INTO`,
append) and through the table layer's commit (delta.py, rows handed over as Arrow) where it
has not; the table itself is always created by the table layer (registered partitioning and
properties), so both paths write the same table. Anything that needs the table layer's
bookkeeping - exactly-once app ids (`app_id`/`transactions`/`expected`), CDC apply, SCD2 -
always goes through the table layer, whatever the engine: those tables (bronze, silver,
dimensions) have one writer with one set of rules, and Spark jobs only read them.
Never writes tables that need exactly-once bookkeeping (bronze, silver, dimensions) natively.
"""

from __future__ import annotations

import time
from typing import Any

from include.lakehouse.errors import KeyColumnError, LakehouseError
from include.lakehouse.results import OperationResult
from include.lakehouse.spark.session import native_delta
from include.lakehouse.tables import delta
from include.lakehouse.tables.registry import TableSpec, resolve

_UNSUPPORTED_READER_FEATURES = {"deletionVectors", "columnMapping"}
NATIVE_MODES = ("append", "overwrite_partition", "merge")
TABLE_LAYER_ONLY_OPTIONS = ("app_id", "app_version", "transactions", "expected", "metadata")


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

    from include.lakehouse.maintenance.operations import _load

    dt = _load(uri, version, None) if version is not None else delta.open_table(uri)
    features = set(dt.protocol().reader_features or [])
    if features & _UNSUPPORTED_READER_FEATURES:
        raise LakehouseError(
            f"table {uri} uses {sorted(features & _UNSUPPORTED_READER_FEATURES)}; reading it needs an engine "
            "with Delta (Sail, the delta-spark jars, Databricks): see LAKEHOUSE_SPARK_DELTA"
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


def writes_natively(df, mode: str, options: dict[str, Any]) -> bool:
    """The write rule of the module docstring, as code."""
    if mode not in NATIVE_MODES or any(options.get(k) is not None for k in TABLE_LAYER_ONLY_OPTIONS):
        return False
    return native_delta(df.sparkSession)


def write_delta(df, table: "str | TableSpec", *, mode: str = "append", **options: Any) -> OperationResult:
    """Write a Spark DataFrame to a Delta table.

    mode: "append" (options: app_id, app_version, partition_by), "overwrite_partition"
    (partition or predicate), "merge" (keys, delete_when, update_when), "cdc"
    (apply_cdc options) or "scd2" (apply_scd2 options). Where the engine has no Delta the
    rows are collected to the driver as Arrow: right for the tables of this project; large
    outputs want an engine with Delta (module docstring: which path writes what).
    """
    writers = {
        "append": delta.append,
        "overwrite_partition": delta.overwrite_partition,
        "merge": delta.merge_upsert,
    }
    if mode == "cdc":
        from include.lakehouse.cdc.apply import apply_cdc as writer
    elif mode == "scd2":
        from include.lakehouse.dimensions.scd2 import apply_scd2 as writer
    elif mode in writers:
        writer = writers[mode]
    else:
        raise LakehouseError(f"write_delta: unknown mode '{mode}'; use one of {sorted(writers) + ['cdc', 'scd2']}")
    if writes_natively(df, mode, options):
        return _write_native(df, table, mode, **options)
    return writer(table, df.toArrow(), **options)


# --------------------------------------------------------------------------- native writes
def _create_like(df, uri: str, spec: TableSpec | None, partition_by: list[str] | None) -> None:
    """The table layer creates the table (partitioning, properties), so both paths agree on it."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    schema = to_arrow_schema(df.schema, timestamp_utc=True) if _takes_utc_flag() else to_arrow_schema(df.schema)
    schema = pa.schema([f.with_nullable(True) for f in schema])  # as a toArrow() write would create it
    delta.ensure_table(uri, schema, spec, partition_by=partition_by)


def _takes_utc_flag() -> bool:
    import inspect

    from pyspark.sql.pandas.types import to_arrow_schema

    return "timestamp_utc" in inspect.signature(to_arrow_schema).parameters


def _write_native(df, table: "str | TableSpec", mode: str, *, partition: dict[str, Any] | None = None,
                  predicate: str | None = None, partition_by: list[str] | None = None,
                  keys: list[str] | None = None, delete_when: str | None = None,
                  update_when: str | None = None) -> OperationResult:
    started = time.perf_counter()
    uri, spec = resolve(table)
    path = _spark_path(uri)
    parts = list(partition_by or (spec.partition_by if spec else ())) or None
    _create_like(df, uri, spec, parts)
    counts: dict[str, int] = {}
    details: dict[str, Any] = {"engine_delta": "native"}
    if mode == "append":
        df.write.format("delta").mode("append").save(path)
    elif mode == "overwrite_partition":
        if not (partition or predicate):
            raise LakehouseError(f"table {uri}: overwrite_partition needs a partition or a predicate")
        predicate = predicate or delta.partition_predicate(partition or {})
        details["predicate"] = predicate
        # counted the table layer's way (the engines' metrics count files, not rows)
        replaced = delta._count_where(delta.open_table(uri), partition) if partition else 0
        df.write.format("delta").mode("overwrite").option("replaceWhere", predicate).save(path)
    else:
        keys = list(keys or (spec.keys if spec else ()))
        source_rows = _check_merge_source(df, uri, keys)
        _merge_native(df, path, keys, delete_when, update_when)
    dt = delta.open_table(uri)
    metrics = delta.last_commit_metrics(dt)
    if mode == "merge":
        counts = {"rows_inserted": _metric(metrics, "num_target_rows_inserted", "numTargetRowsInserted"),
                  "rows_updated": _metric(metrics, "num_target_rows_updated", "numTargetRowsUpdated"),
                  "rows_deleted": _metric(metrics, "num_target_rows_deleted", "numTargetRowsDeleted")}
        counts["rows_skipped"] = source_rows - sum(counts.values())
    else:
        counts = {"rows_inserted": _metric(metrics, "num_output_rows", "numOutputRows", "num_added_rows"),
                  "rows_deleted": replaced if mode == "overwrite_partition" else 0}
    return OperationResult(
        table=uri, operation=mode if mode != "merge" else "merge", version=dt.version(),
        files_added=_metric(metrics, "num_added_files", "numAddedFiles", "numTargetFilesAdded"),
        files_removed=_metric(metrics, "num_removed_files", "numRemovedFiles", "numTargetFilesRemoved"),
        seconds=round(time.perf_counter() - started, 4), details=details, **counts,
    )


def _metric(metrics: dict[str, Any], *names: str) -> int:
    for name in names:
        if metrics.get(name) is not None:
            return int(metrics[name])
    return 0


def _check_merge_source(df, uri: str, keys: list[str]) -> int:
    """The table layer's merge rules (keys present, never null, unique in the source), in Spark."""
    from pyspark.sql import functions as F

    if not keys:
        raise KeyColumnError(f"table {uri}: no key columns given; set `keys` in tables.yaml or pass keys=")
    missing = [k for k in keys if k not in df.columns]
    if missing:
        raise KeyColumnError(f"table {uri}: key column(s) {sorted(missing)} missing; the data has {df.columns}")
    null_keys = F.sum(F.when(F.greatest(*[F.col(k).isNull().cast("int") for k in keys], F.lit(0)) == 1, 1)
                      .otherwise(0))
    row = df.agg(F.count(F.lit(1)).alias("rows"), null_keys.alias("nulls"),
                 F.count_distinct(*[F.col(k) for k in keys]).alias("distinct")).first()
    if row["nulls"]:
        raise KeyColumnError(f"table {uri}: {row['nulls']} row(s) with a null key in {keys}")
    if row["rows"] != row["distinct"]:
        raise KeyColumnError(
            f"table {uri}: the merge source has {row['rows'] - row['distinct']} duplicate key row(s) on {keys}; "
            "deduplicate it first (for change streams use apply_cdc, which keeps the newest)")
    return row["rows"]


def _merge_native(df, path: str, keys: list[str], delete_when: str | None, update_when: str | None) -> None:
    import uuid

    view = f"lakehouse_merge_source_{uuid.uuid4().hex[:12]}"
    df.createOrReplaceTempView(view)
    on = " AND ".join(f"t.{delta.quote(k)} = s.{delta.quote(k)}" for k in keys)
    clauses = []
    if delete_when:
        clauses.append(f"WHEN MATCHED AND ({delete_when}) THEN DELETE")
    clauses.append(f"WHEN MATCHED{f' AND ({update_when})' if update_when else ''} THEN UPDATE SET *")
    clauses.append(f"WHEN NOT MATCHED{f' AND NOT ({delete_when})' if delete_when else ''} THEN INSERT *")
    escaped = path.replace("`", "``")
    try:
        df.sparkSession.sql(f"MERGE INTO delta.`{escaped}` AS t USING {view} AS s ON {on} " + " ".join(clauses)).collect()
    finally:
        df.sparkSession.catalog.dropTempView(view)
