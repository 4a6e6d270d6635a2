"""Order events from Kafka into event-time windows, exactly once, with late events kept.

One Structured Streaming query over `shop.order_events`: parse and validate each message,
assign it to a tumbling and to sliding event-time windows under a watermark, and aggregate
per window (events, revenue, distinct customers) in Spark's state store (update mode). Each
micro-batch is committed by `foreachBatch` through the table layer, one Delta commit per table
carrying the app transaction (app id = `stream.<query id>`, version = batch id), so a batch
replayed after a crash (Spark replays the range its checkpoint planned) writes nothing twice:
- gold/order_events_windows: merged by (window_kind, window_start); Spark's state holds the
  absolute values, so a window's row is replaced, never incremented.
- silver/order_events_late: every (event, window) Spark dropped because the window had closed
  (window end <= the batch's watermark for late events, which Spark records in the checkpoint's
  offset log), with the watermark and how late the event was. Spark only counts what it drops;
  the batch's message range (also from the offset log) is re-read to keep them.
- quarantine/stream.order_events: messages that are not valid order events, with the reason.
- ops/streaming_metrics: one row per micro-batch (see metrics.py).
Must never write a table other than through include/lakehouse/tables/delta.py, and never drop an event
silently: rows in = events in windows + late + quarantined (checked by tests).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from include.lakehouse.failpoints import reach
from include.lakehouse.streaming.queries import checkpoint_location, offset_log_entry, query_id, run_to_end
from include.lakehouse.tables.delta import append, merge_upsert

TOPIC = "shop.order_events"
WINDOWS_TABLE = "gold/order_events_windows"
LATE_TABLE = "silver/order_events_late"
QUARANTINE_TABLE = "quarantine/stream.order_events"
EVENT_TYPES = ("order_placed", "payment_authorized", "order_shipped", "order_delivered", "order_cancelled")
WINDOW_KEYS = ["window_kind", "window_start"]

QUARANTINE_SCHEMA = pa.schema([
    ("partition", pa.int32()), ("offset", pa.int64()), ("key", pa.string()), ("_raw", pa.string()),
    ("_reason", pa.string()), ("kafka_timestamp", pa.timestamp("us", tz="UTC")),
    ("_query_id", pa.string()), ("_batch_id", pa.int64()),
])
LATE_SCHEMA = pa.schema([
    ("event_id", pa.string()), ("order_id", pa.int64()), ("customer_id", pa.int64()), ("event_type", pa.string()),
    ("event_time", pa.timestamp("us", tz="UTC")), ("amount", pa.decimal128(12, 2)),
    ("window_kind", pa.string()), ("window_start", pa.timestamp("us", tz="UTC")),
    ("window_end", pa.timestamp("us", tz="UTC")), ("watermark", pa.timestamp("us", tz="UTC")),
    ("seconds_late", pa.float64()), ("partition", pa.int32()), ("offset", pa.int64()),
    ("_query_id", pa.string()), ("_batch_id", pa.int64()),
])


@dataclass(frozen=True)
class WindowSettings:
    """Event-time windows and how long to wait for late events (Spark interval strings)."""

    tumbling: str = "10 minutes"
    sliding: str = "10 minutes"
    slide: str = "5 minutes"
    watermark: str = "30 minutes"

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> "WindowSettings":
        return cls(**{k: str(v) for k, v in args.items() if k in cls.__dataclass_fields__})


def parse_events(raw):
    """Kafka rows -> typed order events plus `_reason` (null for a valid event)."""
    from pyspark.sql import functions as F

    fields = ["event_id", "order_id", "customer_id", "event_type", "event_time", "amount"]
    schema = "struct<" + ",".join(f"{f}:string" for f in fields) + ",_corrupt:string>"
    doc = F.from_json("value", schema, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt"})
    parsed = raw.withColumn("_doc", doc).select(
        "key", "value", "partition", "offset", F.col("timestamp").alias("kafka_timestamp"),
        *[F.col(f"_doc.{f}").alias(f"_{f}") for f in fields], F.col("_doc._corrupt").alias("_corrupt"),
    )
    typed = parsed.select(
        "*",
        F.col("_event_id").alias("event_id"),
        F.expr("try_cast(_order_id AS bigint)").alias("order_id"),
        F.expr("try_cast(_customer_id AS bigint)").alias("customer_id"),
        F.col("_event_type").alias("event_type"),
        F.expr("try_cast(_event_time AS timestamp)").alias("event_time"),
        F.expr("try_cast(_amount AS decimal(12,2))").alias("amount"),
    )
    checks = []  # every failed check of an event that parsed, joined into one reason
    typed = typed.withColumn("_doc_missing", F.col("value").isNotNull() & F.coalesce(*[F.col(f"_{f}") for f in fields]).isNull())
    for f in ["event_id", "order_id", "customer_id", "event_type", "event_time"]:
        checks.append((F.col(f"_{f}").isNull(), F.lit(f"missing {f}")))
    for f, kind in [("order_id", "an integer"), ("customer_id", "an integer"), ("event_time", "a timestamp"),
                    ("amount", "a decimal(12,2)")]:
        checks.append((F.col(f"_{f}").isNotNull() & F.col(f).isNull(), F.concat(F.lit(f"{f} is not {kind}: "), F.col(f"_{f}"))))
    checks.append((F.col("amount") < 0, F.lit("amount is negative")))
    checks.append((F.col("_event_type").isNotNull() & ~F.col("_event_type").isin(*EVENT_TYPES),
                   F.concat(F.lit("unknown event_type: "), F.col("_event_type"))))
    reasons = F.concat_ws("; ", *[F.when(cond, text) for cond, text in checks])
    typed = typed.withColumn("_reason", F.when(F.col("value").isNull(), F.lit("empty message (no value)"))
                             .when(F.col("_corrupt").isNotNull() | F.col("_doc_missing"), F.lit("not a JSON object with order event fields"))
                             .otherwise(F.nullif(reasons, F.lit(""))))
    return typed.select("key", "value", "partition", "offset", "kafka_timestamp", "event_id", "order_id",
                        "customer_id", "event_type", "event_time", "amount", "_reason")


def assign_windows(events, settings: WindowSettings):
    """One row per (event, window): its tumbling window and each sliding window holding it."""
    from pyspark.sql import functions as F

    keep = ["event_id", "order_id", "customer_id", "event_type", "event_time", "amount", "partition", "offset",
            "kafka_timestamp"]
    tumbling = events.select(F.lit("tumbling").alias("window_kind"), F.window("event_time", settings.tumbling).alias("window"), *keep)
    sliding = events.select(F.lit("sliding").alias("window_kind"),
                            F.window("event_time", settings.sliding, settings.slide).alias("window"), *keep)
    return tumbling.unionByName(sliding)


def window_aggregates(parsed, settings: WindowSettings):
    """The streaming aggregation: per window kind and window, under the watermark."""
    from pyspark.sql import functions as F

    valid = parsed.filter(F.col("_reason").isNull()).withWatermark("event_time", settings.watermark)
    return assign_windows(valid, settings).groupBy("window_kind", "window").agg(
        F.count("*").alias("events"),
        F.sum("amount").cast("decimal(18,2)").alias("revenue"),
        F.size(F.collect_set("customer_id")).cast("long").alias("distinct_customers"),
        F.sum(F.when(F.col("event_type") == "order_placed", 1).otherwise(0)).cast("long").alias("orders_placed"),
        F.max("event_time").alias("last_event_time"),
    ).select("window_kind", F.col("window.start").alias("window_start"), F.col("window.end").alias("window_end"),
             "events", "revenue", "distinct_customers", "orders_placed", "last_event_time")


# ------------------------------------------------------------------ the offset log (Spark's WAL)
def batch_range(checkpoint: str, batch_id: int, initial: dict[str, int]) -> tuple[dict, dict, int]:
    """(start offsets, end offsets, watermark for late events in ms) of one micro-batch.
    Spark drops a row when its window ended at or before the previous batch's watermark."""
    entry = offset_log_entry(checkpoint, batch_id)
    previous = offset_log_entry(checkpoint, batch_id - 1)
    if entry is None:
        raise RuntimeError(f"checkpoint {checkpoint} has no offset log entry for batch {batch_id}")
    end = entry["sources"][0] or {}
    start = (previous["sources"][0] if previous else None) or initial
    late_watermark = int((previous or {"metadata": {}})["metadata"].get("batchWatermarkMs", 0))
    return start, end, late_watermark


# ------------------------------------------------------------------ the micro-batch sink
@dataclass
class BatchOutcome:
    batch_id: int
    input_rows: int = 0
    valid_events: int = 0
    quarantined: int = 0
    late_rows: int = 0
    late_events: int = 0
    windows_updated: int = 0
    watermark_ms: int = 0
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    max_event_time: datetime | None = None
    committed_at: datetime | None = None
    latencies: list[float] = field(default_factory=list, repr=False)  # seconds per valid event (not stored)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(round(q * (len(values) - 1))))], 3)


class OrderEventsSink:
    """`foreachBatch` target: writes one micro-batch to every table, each once."""

    def __init__(self, spark, config: dict[str, Any], checkpoint: str, settings: WindowSettings, *,
                 topic: str = TOPIC, query_name: str = "stream_order_events"):
        self.spark, self.config, self.checkpoint, self.settings = spark, config, checkpoint, settings
        self.topic, self.query_name = topic, query_name
        self.query_id: str | None = None
        self.outcomes: list[BatchOutcome] = []

    def app_id(self) -> str:
        return f"stream.{self.query_id}"

    def __call__(self, windows_df, batch_id: int) -> None:
        from pyspark.sql import functions as F

        from include.lakehouse.streaming.kafka_source import kafka_range, partitions_of

        if self.query_id is None:
            self.query_id = query_id(self.checkpoint)
        initial = {str(p): 0 for p in partitions_of(self.config, self.topic)}
        start, end, late_wm = batch_range(self.checkpoint, batch_id, initial)
        outcome = BatchOutcome(batch_id, watermark_ms=late_wm)
        if end == {p: o for p, o in start.items() if p in end}:  # a no-data batch (the watermark moved on)
            start = end = {}
        raw = kafka_range(self.spark, self.topic, self.config, start, end)
        parsed = parse_events(raw).cache()
        try:
            outcome.input_rows = parsed.count()
            bad = parsed.filter(F.col("_reason").isNotNull()).select(
                F.col("partition").cast("int"), "offset", "key", F.col("value").alias("_raw"), "_reason",
                "kafka_timestamp", F.lit(self.query_id).alias("_query_id"), F.lit(batch_id).cast("long").alias("_batch_id"))
            bad_rows = bad.toArrow().cast(QUARANTINE_SCHEMA) if outcome.input_rows else QUARANTINE_SCHEMA.empty_table()
            outcome.quarantined = bad_rows.num_rows
            valid = parsed.filter(F.col("_reason").isNull())
            watermark = F.timestamp_millis(F.lit(late_wm))
            late = assign_windows(valid, self.settings).filter(F.col("window.end") <= watermark).select(
                "event_id", "order_id", "customer_id", "event_type", "event_time", "amount", "window_kind",
                F.col("window.start").alias("window_start"), F.col("window.end").alias("window_end"),
                watermark.alias("watermark"),
                ((F.unix_micros(watermark) - F.unix_micros("event_time")) / 1e6).alias("seconds_late"),
                F.col("partition").cast("int"), "offset", F.lit(self.query_id).alias("_query_id"),
                F.lit(batch_id).cast("long").alias("_batch_id"))
            late_rows = late.toArrow() if outcome.input_rows else LATE_SCHEMA.empty_table()
            late_rows = late_rows.rename_columns(LATE_SCHEMA.names).cast(LATE_SCHEMA)
            outcome.late_rows = late_rows.num_rows
            outcome.late_events = len(set(late_rows.column("event_id").to_pylist()))
            stats = valid.agg(F.count("*").alias("n"), F.max("event_time").alias("max_t")).first()
            outcome.valid_events, outcome.max_event_time = int(stats["n"]), stats["max_t"]
            kafka_times = [t for t in valid.select("kafka_timestamp").toPandas()["kafka_timestamp"].tolist() if t is not None] \
                if outcome.valid_events else []
        finally:
            parsed.unpersist()
        windows = windows_df.toArrow()
        outcome.windows_updated = windows.num_rows
        version = {"app_id": self.app_id(), "app_version": batch_id}
        if bad_rows.num_rows:
            append(QUARANTINE_TABLE, bad_rows, **version)
        if late_rows.num_rows:
            append(LATE_TABLE, late_rows, **version)
        reach("stream.before_windows_commit")
        if windows.num_rows:
            merge_upsert(WINDOWS_TABLE, windows.append_column(
                "_batch_id", pa.array([batch_id] * windows.num_rows, pa.int64())), keys=WINDOW_KEYS, **version)
        reach("stream.after_windows_commit")
        outcome.committed_at = datetime.now(timezone.utc)
        outcome.latencies = [(outcome.committed_at - _utc(t)).total_seconds() for t in kafka_times]
        outcome.latency_p50_s = _percentile(outcome.latencies, 0.5)
        outcome.latency_p95_s = _percentile(outcome.latencies, 0.95)
        from include.lakehouse.streaming.metrics import record_batch

        record_batch(self.query_name, self.query_id, outcome)
        self.outcomes.append(outcome)


def _utc(t) -> datetime:
    t = t.to_pydatetime() if hasattr(t, "to_pydatetime") else t
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def run_query(spark, config: dict[str, Any], *, settings: WindowSettings | None = None, trigger: str = "availableNow",
              query_name: str = "stream_order_events", topic: str = TOPIC, source: str = "auto",
              max_offsets_per_trigger: int | None = None, timeout: float | None = None,
              latencies: list[float] | None = None) -> dict[str, Any]:
    """Run the order-events query (`trigger`: see queries.run_to_end); returns the run's totals."""
    from include.lakehouse.streaming.kafka_source import kafka_stream

    settings = settings or WindowSettings()
    checkpoint = checkpoint_location(query_name)
    started = time.perf_counter()
    raw = kafka_stream(spark, topic, config, source=source, max_offsets_per_trigger=max_offsets_per_trigger)
    windows = window_aggregates(parse_events(raw), settings)
    sink = OrderEventsSink(spark, config, checkpoint, settings, topic=topic, query_name=query_name)
    writer = (windows.writeStream.queryName(query_name).outputMode("update").option("checkpointLocation", checkpoint)
              .foreachBatch(sink))
    query, progress = run_to_end(writer, trigger=trigger, query_name=query_name, timeout=timeout)
    if latencies is not None:  # the benchmark's per-event numbers
        latencies.extend(x for o in sink.outcomes for x in o.latencies)
    totals = {k: sum(getattr(o, k) for o in sink.outcomes)
              for k in ("input_rows", "valid_events", "quarantined", "late_rows", "late_events", "windows_updated")}
    dropped = sum(op.get("numRowsDroppedByWatermark", 0) for p in progress for op in p.get("stateOperators", []))
    return {"query": query_name, "query_id": str(query.id), "batches": [o.batch_id for o in sink.outcomes],
            **totals, "spark_rows_dropped_by_watermark": dropped, "settings": asdict(settings),
            "latency_p95_s": max((o.latency_p95_s or 0 for o in sink.outcomes), default=None),
            "seconds": round(time.perf_counter() - started, 2)}
