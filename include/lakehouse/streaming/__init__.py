"""Streaming: Kafka topics into Delta with Spark Structured Streaming (and a Python-native peer).

- kafka_source.py: the project's Kafka source for Spark (a Python data source, no jars), or
  Spark's own `format("kafka")` where the spark-sql-kafka jar exists - configuration only.
- order_events.py: parse and validate order events, event-time windows with a watermark,
  late-event capture, and the exactly-once micro-batch sinks through the table layer.
- change_feed.py: a Delta table's change data feed as a stream into an incremental aggregate.
- metrics.py: per micro-batch metrics and the thresholds that raise alerts.
"""
