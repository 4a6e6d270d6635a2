"""CDC apply and SCD2 on Spark, with the delta-rs path's semantics and the table layer's commit.

Which engine applies a table's changes is configuration: the table's registry entry
(tables.yaml) says `engine: delta-rs | spark`, or `spark_from_rows: N` (Spark once the
target holds at least N rows, counted from its Delta log); LAKEHOUSE_CHANGES_ENGINE
(delta-rs | spark) overrides it for every table of a deployment. `apply_cdc_configured` and
`apply_scd2_configured` are what the flow modules call; the DAGs never know.

Spark does the work that grows with the data, the table layer does the commit:
- CDC: the newest event per key (highest sequence, the last in the batch on ties: a window
  over the keys) and dropping upserts not newer than the key's latest recorded delete (a
  join with the tombstones) run in Spark; the reduced batch (one row per touched key) is
  then applied by `cdc.apply.apply_cdc`, which records tombstones, merges with the "never behind
  the applied sequence" predicates and commits the batch's positions in the same commit.
- SCD2: the stored versions of the touched keys (a semi-join of the dimension, read at the
  snapshot the commit will be checked against) and the batch's changes are bucketed by a
  hash of the key and each bucket's history is recomputed by the very planner the delta-rs
  path runs (`scd2.plan_merge`), in Spark's Python workers (applyInArrow). The merge rows come
  back to `dimensions.scd2.apply_scd2`, which merges them on the surrogate key with the positions.
  Same planner, same row hashes, same surrogate keys: the tables are identical, column for
  column (tests/spark/test_changes.py runs both on the same random streams).

Exactly once: the positions are committed with the data by the table layer (Delta app
transactions), on the snapshot the plan was made from; a commit conflict re-plans (in
Spark again). Executors must be able to import this project (`include/` on their
PYTHONPATH: the image on a cluster, scripts/spark_engine.py for the local engines).
"""

from __future__ import annotations

import os
from typing import Any, Iterable

import pyarrow as pa

from include.lakehouse.dimensions.scd2 import META, plan_merge
from include.lakehouse.errors import KeyColumnError, LakehouseError
from include.lakehouse.results import OperationResult
from include.lakehouse.tables.registry import TableSpec, resolve


ENGINES = ("delta-rs", "spark")
_LATE = "__late"
_SLICE_ROWS = 500_000


# --------------------------------------------------------------------------- engine choice
def table_rows(uri: str) -> int:
    """Rows in the table at `uri` from its Delta log's file statistics (0 when it is not there)."""
    from include.lakehouse.tables.delta import try_open

    dt = try_open(uri)
    if dt is None:
        return 0
    import pyarrow.compute as pc

    counts = pa.table(dt.get_add_actions(flatten=True)).column("num_records")
    return int(pc.sum(counts).as_py() or 0)


def engine_for(table: "str | TableSpec") -> str:
    """The engine that applies changes to `table`, from its registry entry."""
    forced = os.environ.get("LAKEHOUSE_CHANGES_ENGINE")
    if forced:
        if forced not in ENGINES:
            raise LakehouseError(f"LAKEHOUSE_CHANGES_ENGINE={forced!r}: use one of {ENGINES}")
        return forced
    uri, spec = resolve(table)
    if spec is None:
        return "delta-rs"
    if spec.engine == "spark":
        return "spark"
    if spec.spark_from_rows is not None and table_rows(uri) >= spec.spark_from_rows:
        return "spark"
    return "delta-rs"


def _session(spark):
    """The given session, else the configured one; a local master uses the warm local Connect
    engine when one is announced (LAKEHOUSE_SPARK_CONNECT_URL), as SparkJobOperator does."""
    if spark is not None:
        return spark
    from include.lakehouse.spark.session import connection_target, get_spark

    warm = os.environ.get("LAKEHOUSE_SPARK_CONNECT_URL")
    if warm and not (os.environ.get("SPARK_REMOTE") or os.environ.get("SPARK_MASTER")):
        target = connection_target()
        if not target.get("remote") and (target.get("master") or "local").startswith("local"):
            return get_spark(app_name="lakehouse_changes", remote=warm)
    return get_spark(app_name="lakehouse_changes")


def apply_cdc_configured(table: "str | TableSpec", changes: Any, *, spark=None, **options: Any) -> OperationResult:
    """`cdc.apply.apply_cdc` on the table's configured engine (Spark when `spark` is given)."""
    if spark is None and engine_for(table) == "delta-rs":
        from include.lakehouse.cdc.apply import apply_cdc

        return apply_cdc(table, changes, **options)
    return spark_apply_cdc(_session(spark), table, changes, **options)


def apply_scd2_configured(table: "str | TableSpec", changes: Any, *, spark=None, **options: Any) -> OperationResult:
    """`dimensions.scd2.apply_scd2` on the table's configured engine (Spark when `spark` is given)."""
    if spark is None and engine_for(table) == "delta-rs":
        from include.lakehouse.dimensions.scd2 import apply_scd2

        return apply_scd2(table, changes, **options)
    return spark_apply_scd2(_session(spark), table, changes, **options)


# --------------------------------------------------------------------------- CDC
def _frame(spark, data: Any):
    """A Spark DataFrame of `data` (a DataFrame already, or anything the table layer takes)."""
    if hasattr(data, "sparkSession"):
        return data
    from include.lakehouse.tables.delta import to_arrow

    table = to_arrow(data)
    if table.num_rows == 0:
        from pyspark.sql.pandas.types import from_arrow_schema

        return spark.createDataFrame([], from_arrow_schema(table.schema))
    if table.num_rows <= _SLICE_ROWS:
        return spark.createDataFrame(table)
    # one Spark Connect message carries at most 128 MiB (10M changes are ~500 MB) and a union
    # of local relations is one message: each slice goes over alone, as a temporary view
    import uuid

    name = f"lakehouse_changes_{uuid.uuid4().hex[:12]}"
    frame = None
    for index, start in enumerate(range(0, table.num_rows, _SLICE_ROWS)):
        spark.createDataFrame(table.slice(start, _SLICE_ROWS)).createOrReplaceTempView(f"{name}_{index}")
        part = spark.table(f"{name}_{index}")
        frame = part if frame is None else frame.unionByName(part)
    return frame


def spark_apply_cdc(
    spark, table: "str | TableSpec", changes: Any, *, keys: Iterable[str] | None = None,
    sequence_column: str | None = None, op_column: str = "op", source_time_column: str | None = None,
    transactions: dict[str, int] | None = None, expected: dict[str, int | None] | None = None,
) -> OperationResult:
    """`cdc.apply.apply_cdc` with the batch reduced in Spark (module docstring)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from include.lakehouse.cdc.apply import APPLIED_SEQUENCE, DELETE_OP, UPSERT_OPS, apply_cdc, tombstone_uri
    from include.lakehouse.spark.bridge import read_delta
    from include.lakehouse.tables.delta import try_open

    uri, spec = resolve(table)
    df = _frame(spark, changes)
    sequence_column = sequence_column or (spec.sequence_column if spec else None)
    keys = list(keys or (spec.keys if spec else ()))
    if not sequence_column:
        raise KeyColumnError(f"table {uri}: no sequence column; pass sequence_column= (e.g. the source LSN)")
    for column, what in [(sequence_column, "sequence column"), (op_column, "op column"),
                         (source_time_column, "source time column"), *[(k, "key column") for k in keys]]:
        if column is not None and column not in df.columns:
            raise KeyColumnError(f"table {uri}: {what} '{column}' missing from the changes ({df.columns})")
    if not keys:
        raise KeyColumnError(f"table {uri}: no key columns given or registered")
    stats = df.agg(F.count(F.lit(1)).alias("n"), F.count_if(F.col(sequence_column).isNull()).alias("nulls"),
                   F.collect_set(F.col(op_column)).alias("ops")).collect()[0]
    unknown = set(stats["ops"]) - UPSERT_OPS - {DELETE_OP}
    if unknown:
        raise KeyColumnError(f"table {uri}: unknown op value(s) {sorted(map(str, unknown))}; expected c, r, u, d")
    if stats["nulls"]:
        raise KeyColumnError(f"table {uri}: sequence column '{sequence_column}' has nulls")

    # the newest event per key: highest sequence, the last in the batch on ties
    ordered = df.withColumn("__row", F.monotonically_increasing_id())
    newest_first = Window.partitionBy(*keys).orderBy(F.col(sequence_column).desc(), F.col("__row").desc())
    newest = ordered.withColumn("__rank", F.row_number().over(newest_first)).filter("__rank = 1")
    if try_open(tombstone_uri(uri)) is not None:  # upserts not newer than the key's latest delete go
        deleted_at = (read_delta(spark, tombstone_uri(uri)).groupBy(*keys)
                      .agg(F.max(APPLIED_SEQUENCE).alias("__deleted_at")))
        newest = newest.join(deleted_at, keys, "left").filter(
            (F.col(op_column) == DELETE_OP) | F.col("__deleted_at").isNull()
            | (F.col(sequence_column).cast("long") > F.col("__deleted_at"))).drop("__deleted_at")
    reduced = newest.orderBy("__row").drop("__rank", "__row").select(*df.columns).toArrow()
    result = apply_cdc(uri if spec is None else spec, reduced, keys=keys, sequence_column=sequence_column,
                       op_column=op_column, source_time_column=source_time_column, transactions=transactions,
                       expected=expected)
    result.rows_skipped += int(stats["n"]) - reduced.num_rows
    result.details = {**result.details, "events_received": int(stats["n"]), "engine": "spark"}
    return result


# --------------------------------------------------------------------------- SCD2
def spark_apply_scd2(spark, table: "str | TableSpec", changes: Any, *, buckets: int | None = None,
                     **options: Any) -> OperationResult:
    """`dimensions.scd2.apply_scd2` with each key's history planned in Spark (module docstring)."""
    from include.lakehouse.dimensions.scd2 import apply_scd2

    result = apply_scd2(table, changes, planner=SparkPlanner(spark, table, buckets), **options)
    result.details = {**result.details, "engine": "spark"}
    return result


class _Stored:
    """What `scd2.plan_merge` reads from a Delta table (schema, table or dataset): the stored
    versions of one bucket's keys, already narrowed by Spark."""

    def __init__(self, rows: pa.Table):
        self._rows = rows

    def schema(self) -> "_Stored":
        return self

    def to_arrow(self) -> pa.Schema:  # as DeltaTable.schema().to_arrow()
        return self._rows.schema

    def to_pyarrow_table(self, *args, **kwargs) -> pa.Table:
        return self._rows

    def to_pyarrow_dataset(self, *args, **kwargs):
        import pyarrow.dataset as ds

        return ds.dataset(self._rows)


def _plan_bucket(batch: pa.Table, *, stored_schema: pa.Schema | None, incoming_schema: pa.Schema,
                 output_schema: pa.Schema, args: tuple) -> pa.Table:
    """One bucket of keys: split the rows back into stored versions and changes, plan with
    `scd2.plan_merge`, return the merge rows and, in one extra row, the late count."""
    import pyarrow.compute as pc

    stored_part = pc.equal(batch.column("__part"), "stored")
    incoming = batch.filter(pc.invert(stored_part)).sort_by("__seq")
    incoming = incoming.select(incoming_schema.names).cast(incoming_schema)
    stored = None
    if stored_schema is not None:
        stored = _Stored(batch.filter(stored_part).select(stored_schema.names).cast(stored_schema))
    source, late = plan_merge(incoming, stored, *args)
    source = source.select([n for n in output_schema.names if n != _LATE])
    source = source.append_column(_LATE, pa.array([0] * source.num_rows, pa.int64()))
    count = pa.Table.from_pylist([{"__action": "late", _LATE: late}], schema=output_schema)
    return pa.concat_tables([source.cast(output_schema), count])


class SparkPlanner:
    """`scd2.plan_merge`'s signature, run bucket by bucket in Spark: (changes, dt, keys, tracked,
    type1, effective, deleted, surrogate key) -> (merge rows with __action, late count)."""

    def __init__(self, spark, table: "str | TableSpec", buckets: int | None = None):
        self.spark, self.uri, self.buckets = spark, resolve(table)[0], buckets

    def __call__(self, data: pa.Table, dt, keys, tracked, type1, effective, deleted, sk) -> tuple[pa.Table, int]:
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_schema

        from include.lakehouse.spark.bridge import read_delta

        args = (keys, tracked, type1, effective, deleted, sk)
        if data.num_rows == 0:  # nothing to plan: no Spark job
            return plan_merge(data, None if dt is None else _Stored(pa.schema(dt.schema().to_arrow()).empty_table()),
                         *args)
        values = keys + tracked + type1
        incoming_schema = data.select(values + [effective] + ([deleted] if deleted else [])).schema
        columns = [sk] + values + list(META)
        stored_schema = None if dt is None else pa.schema(dt.schema().to_arrow()).empty_table().select(columns).schema
        value_types = stored_schema if stored_schema is not None else incoming_schema
        output_schema = pa.schema(
            [pa.field(sk, pa.int64())] + [value_types.field(c) for c in values]
            + [pa.field("valid_from", incoming_schema.field(effective).type if stored_schema is None
                        else stored_schema.field("valid_from").type)]
            + [pa.field("valid_to", (incoming_schema.field(effective).type if stored_schema is None
                                     else stored_schema.field("valid_to").type)),
               pa.field("is_current", pa.bool_()), pa.field("is_deleted", pa.bool_()),
               pa.field("row_hash", pa.int64()), pa.field("__action", pa.string()), pa.field(_LATE, pa.int64())])
        n = self.buckets or data.num_rows // 250_000 + 2  # ~250k changes (and their versions) a task
        changes = _frame(self.spark, data.select(incoming_schema.names).append_column(
            "__seq", pa.array(range(data.num_rows), pa.int64())))
        combined = changes.withColumn("__part", F.lit("change"))
        if dt is not None:
            stored = read_delta(self.spark, self.uri, version=dt.version()).select(*columns)
            stored = stored.join(changes.select(*keys).distinct(), keys, "left_semi")
            stored = stored.withColumn("__part", F.lit("stored"))
            # both sides get every column, typed (an untyped null column does not union on every engine)
            types = {**{f.name: f.dataType for f in stored.schema.fields},
                     **{f.name: f.dataType for f in combined.schema.fields}}
            every = list(dict.fromkeys(combined.columns + stored.columns))

            def full(frame):
                return frame.select(*[F.col(c) if c in frame.columns else F.lit(None).cast(types[c]).alias(c)
                                      for c in every])

            combined = full(combined).unionByName(full(stored))
        combined = combined.withColumn("__bucket", F.pmod(F.hash(*keys), F.lit(n)))
        plan = {"stored_schema": stored_schema, "incoming_schema": incoming_schema,
                "output_schema": output_schema, "args": args}
        _ship_by_value()
        planned = (combined.groupBy("__bucket")
                   .applyInArrow(lambda batch: _plan_bucket(batch, **plan), from_arrow_schema(output_schema))
                   .toArrow())
        import pyarrow.compute as pc

        counts = pc.equal(planned.column("__action"), "late")
        late = int(pc.sum(planned.filter(counts).column(_LATE)).as_py() or 0)
        source = planned.filter(pc.invert(counts)).drop_columns([_LATE])
        return source.cast(output_schema.remove(output_schema.get_field_index(_LATE))), late


def _ship_by_value() -> None:
    """Pickle this project's functions by value into Spark's Python workers, so executors
    run the planner without `include/` on their path (only the same Python packages)."""
    import include
    from pyspark import cloudpickle

    cloudpickle.register_pickle_by_value(include)


__all__ = ["apply_cdc_configured", "apply_scd2_configured", "engine_for", "spark_apply_cdc", "spark_apply_scd2",
           "SparkPlanner", "table_rows"]
