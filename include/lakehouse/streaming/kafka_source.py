"""A Kafka topic as a Spark stream without any jar: a Python streaming data source over
confluent-kafka (pyspark >= 4.2 `DataSourceStreamReader`), registered as `lakehouse_kafka`.

Offsets are Spark's business: each micro-batch's range (partition -> next offset) is planned
by `latestOffset` and recorded in the query's checkpoint before the batch runs, so a restart
replays exactly the planned range. A partition's end is what the client reports
(end-of-partition event), never the broker's high watermark (the embedded broker's lags the
log). No consumer group is joined: partitions are assigned explicitly. Rows carry the same
columns as Spark's own Kafka source (key and value as strings), so a cluster with the
spark-sql-kafka jar switches to `format("kafka")` by configuration (`kafka_stream`).
Must never commit anything anywhere: positions live in the checkpoint and the sinks' Delta logs.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Iterator

SOURCE_NAME = "lakehouse_kafka"
SCHEMA = "key string, value string, topic string, partition int, offset long, timestamp timestamp"

from pyspark.sql.datasource import DataSource, DataSourceReader, DataSourceStreamReader, InputPartition  # noqa: E402
from pyspark.sql.streaming.datasource import SupportsTriggerAvailableNow  # noqa: E402


def _config(options: dict[str, str]) -> dict[str, Any]:
    config = json.loads(options.get("kafka_config") or "{}")
    if options.get("kafka.bootstrap.servers"):
        config["bootstrap.servers"] = options["kafka.bootstrap.servers"]
    if not config.get("bootstrap.servers"):
        raise ValueError("lakehouse_kafka: set option kafka.bootstrap.servers (or kafka_config as JSON)")
    return config


def _consumer(config: dict[str, Any]):
    from confluent_kafka import Consumer

    # a fetch that brings nothing new is what reports a partition's end: do not let the broker hold it
    return Consumer({"fetch.wait.max.ms": 10, **config, "group.id": config.get("group.id", "lakehouse-stream"),
                     "enable.auto.commit": False, "enable.partition.eof": True, "auto.offset.reset": "error"})


def partitions_of(config: dict[str, Any], topic: str, timeout: float = 10.0) -> list[int]:
    from confluent_kafka.admin import AdminClient

    metadata = AdminClient(config).list_topics(topic=topic, timeout=timeout)
    if topic not in metadata.topics or metadata.topics[topic].error is not None:
        raise ValueError(f"lakehouse_kafka: topic '{topic}' does not exist on {config.get('bootstrap.servers')}")
    return sorted(metadata.topics[topic].partitions)


def scan_ends(config: dict[str, Any], topic: str, start: dict[str, int], max_rows: int | None = None,
              timeout: float = 300.0, stop_at: dict[str, int] | None = None) -> dict[str, int]:
    """The next offset after the last message of every partition (from `start`), as the client
    reports the end of each; at most `max_rows` messages in all beyond `start`, and never past
    `stop_at` (partition -> offset: an availableNow run's target)."""
    from confluent_kafka import KafkaError, TopicPartition

    end = dict(start)
    unfinished = {p for p in start if stop_at is None or start[p] < stop_at.get(p, start[p])}
    if not unfinished:
        return end
    seen, deadline = 0, time.monotonic() + timeout
    consumer = _consumer(config)
    try:
        consumer.assign([TopicPartition(topic, int(p), start[p]) for p in sorted(unfinished)])
        while unfinished and (max_rows is None or seen < max_rows):
            if time.monotonic() > deadline:
                raise TimeoutError(f"lakehouse_kafka: no end of partition(s) {sorted(unfinished)} of {topic} "
                                   f"within {timeout} s; the broker is slow or stalled")
            batch = 1000 if max_rows is None else max(1, min(1000, max_rows - seen))
            for msg in consumer.consume(batch, timeout=1.0):
                p, error = str(msg.partition()), msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        unfinished.discard(p)
                        continue
                    raise RuntimeError(f"lakehouse_kafka: {topic} partition {p}: {error}")
                if p not in unfinished:
                    continue
                if stop_at is not None and msg.offset() >= stop_at[p]:
                    unfinished.discard(p)
                    continue
                if msg.offset() >= end[p]:
                    end[p] = msg.offset() + 1
                    seen += 1
                    if stop_at is not None and end[p] >= stop_at[p]:
                        unfinished.discard(p)
    finally:
        consumer.close()
    return end


def read_range(config: dict[str, Any], topic: str, partition: int, start: int, end: int,
               timeout: float = 300.0) -> Iterator[tuple]:
    """Rows (key, value, topic, partition, offset, timestamp) of offsets [start, end) of one partition."""
    from datetime import datetime, timezone

    from confluent_kafka import KafkaError, TopicPartition

    if end <= start:
        return
    deadline = time.monotonic() + timeout
    consumer = _consumer(config)
    try:
        consumer.assign([TopicPartition(topic, partition, start)])
        next_offset = start
        while next_offset < end:
            if time.monotonic() > deadline:
                raise TimeoutError(f"lakehouse_kafka: {topic}[{partition}] offsets {next_offset}..{end} not read "
                                   f"within {timeout} s")
            for msg in consumer.consume(1000, timeout=1.0):
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise RuntimeError(f"lakehouse_kafka: {topic} partition {partition}: {error}")
                offset = msg.offset()
                if offset >= end:
                    next_offset = end
                    break
                next_offset = offset + 1
                key, value = msg.key(), msg.value()
                ts_type, ts = msg.timestamp()
                yield (key.decode("utf-8", "replace") if key is not None else None,
                       value.decode("utf-8", "replace") if value is not None else None,
                       topic, partition, offset,
                       datetime.fromtimestamp(ts / 1000, timezone.utc) if ts_type and ts >= 0 else None)
    finally:
        consumer.close()


class KafkaRange(InputPartition):
    def __init__(self, partition: int, start: int, end: int):
        self.partition, self.start, self.end = partition, start, end


def _ranges(start: dict, end: dict) -> list[KafkaRange]:
    return [KafkaRange(int(p), int(start.get(p, 0)), int(o)) for p, o in sorted(end.items(), key=lambda kv: int(kv[0]))
            if int(o) > int(start.get(p, 0))]


class KafkaStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Micro-batches of at most maxOffsetsPerTrigger messages; with availableNow, up to the end
    of every partition as found by the run's first plan, in as many batches as that takes."""

    def __init__(self, options: dict[str, str]):
        self.target: dict[str, int] | None = None
        self.available_now = False
        self.options = options  # case-insensitive (Spark option names): keep it so
        self.config = _config(self.options)
        self.topic = self.options["subscribe"]
        self.max_rows = int(self.options["maxOffsetsPerTrigger"]) if self.options.get("maxOffsetsPerTrigger") else None

    def initialOffset(self) -> dict:
        starting = self.options.get("startingOffsets", "earliest")
        if starting != "earliest":
            return {str(p): int(o) for p, o in json.loads(starting).get(self.topic, {}).items()}
        return {str(p): 0 for p in partitions_of(self.config, self.topic)}

    def getDefaultReadLimit(self):
        from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadMaxRows

        return ReadMaxRows(self.max_rows) if self.max_rows else ReadAllAvailable()

    def prepareForTriggerAvailableNow(self) -> None:
        self.available_now = True  # the target is planned from the first start Spark gives

    def latestOffset(self, start: dict, limit) -> dict:
        from pyspark.sql.streaming.datasource import ReadMaxRows

        start = {**{str(p): 0 for p in partitions_of(self.config, self.topic)}, **start}  # new partitions too
        max_rows = limit.max_rows if isinstance(limit, ReadMaxRows) else None
        if self.available_now and self.target is None:
            self.target = scan_ends(self.config, self.topic, start)
        if self.target is not None:
            if max_rows is None:
                return {p: max(o, self.target.get(p, o)) for p, o in start.items()}
            return scan_ends(self.config, self.topic, start, max_rows, stop_at={p: self.target.get(p, o) for p, o in start.items()})
        return scan_ends(self.config, self.topic, start, max_rows)

    def partitions(self, start: dict, end: dict):
        return _ranges(start, end)

    def read(self, partition: KafkaRange):
        return read_range(self.config, self.topic, partition.partition, partition.start, partition.end)


class KafkaBatchReader(DataSourceReader):
    """A fixed offset range (startingOffsets/endingOffsets as {topic: {partition: offset}} JSON)."""

    def __init__(self, options: dict[str, str]):
        self.config = _config(options)
        self.topic = options["subscribe"]
        self.start = json.loads(options.get("startingOffsets") or "{}").get(self.topic, {})
        self.end = json.loads(options["endingOffsets"])[self.topic]

    def partitions(self):
        return _ranges({str(p): o for p, o in self.start.items()}, {str(p): o for p, o in self.end.items()})

    def read(self, partition: KafkaRange):
        if not isinstance(partition, KafkaRange):  # an empty range: Spark plans one placeholder partition
            return iter(())
        return read_range(self.config, self.topic, partition.partition, partition.start, partition.end)


class KafkaDataSource(DataSource):
    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def schema(self) -> str:
        return SCHEMA

    def streamReader(self, schema) -> DataSourceStreamReader:
        return KafkaStreamReader(self.options)

    def reader(self, schema) -> DataSourceReader:
        return KafkaBatchReader(self.options)


def jar_source_available(spark) -> bool:
    """Whether the engine has Spark's own Kafka source (the spark-sql-kafka jar)."""
    try:
        spark.read.format("kafka").option("kafka.bootstrap.servers", "127.0.0.1:1").option("subscribe", "x").load()
    except Exception as exc:  # noqa: BLE001 - the message tells "no such source" from "cannot connect"
        return not any(m in str(exc) for m in ("DATA_SOURCE_NOT_FOUND", "Failed to find data source", "No data source"))
    return True


def kafka_stream(spark, topic: str, config: dict[str, Any], *, source: str = "auto",
                 max_offsets_per_trigger: int | None = None):
    """A streaming DataFrame of `topic` with Spark's Kafka columns (key, value, topic, partition,
    offset, timestamp). `source`: `python` (this module), `jar` (`format("kafka")`), or `auto`
    (the jar when the engine has it)."""
    if source == "auto":
        source = "jar" if jar_source_available(spark) else "python"
    if source == "jar":
        reader = spark.readStream.format("kafka").option("subscribe", topic).option("startingOffsets", "earliest")
        for key, value in config.items():
            reader = reader.option(f"kafka.{key}", str(value))
        if max_offsets_per_trigger:
            reader = reader.option("maxOffsetsPerTrigger", max_offsets_per_trigger)
        from pyspark.sql import functions as F

        return reader.load().select(F.col("key").cast("string"), F.col("value").cast("string"), "topic",
                                    "partition", "offset", "timestamp")
    if source != "python":
        raise ValueError(f"Kafka source '{source}' unknown: use auto, python or jar")
    spark.dataSource.register(KafkaDataSource)
    reader = spark.readStream.format(SOURCE_NAME).option("subscribe", topic).option("kafka_config", json.dumps(config))
    if max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets_per_trigger))
    return reader.load()


def kafka_range(spark, topic: str, config: dict[str, Any], start: dict, end: dict):
    """The messages of `topic` between two offset maps (partition -> next offset) as a batch DataFrame."""
    spark.dataSource.register(KafkaDataSource)
    return (spark.read.format(SOURCE_NAME).option("subscribe", topic).option("kafka_config", json.dumps(config))
            .option("startingOffsets", json.dumps({topic: start})).option("endingOffsets", json.dumps({topic: end}))
            .load())


def kafka_config_from_env() -> dict[str, Any]:
    """Kafka client settings handed to a Spark job (LAKEHOUSE_KAFKA_CONFIG, JSON)."""
    raw = os.environ.get("LAKEHOUSE_KAFKA_CONFIG")
    if not raw:
        raise ValueError("LAKEHOUSE_KAFKA_CONFIG is not set: the task passes the Kafka connection's settings "
                         "there (SparkJobOperator(kafka_conn_id=...)), or export it as JSON")
    return json.loads(raw)
