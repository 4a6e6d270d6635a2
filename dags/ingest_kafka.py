"""
### ingest_kafka

Appends new messages of every configured topic (`include/lakehouse/sources.yaml`) to
**`bronze/<topic>`** with key, partition, offset, timestamp and the raw payload, through
the `kafka_default` connection. All partitions are assigned at once and read from the next
offset recorded in bronze's own Delta log (in the same commit as the data) to the end the
client reports: a crash, a retry or a concurrent run never duplicates and never skips.
Undecodable messages go to **`quarantine/<topic>`** once, with the reason, and never block
their partition; tombstones are kept (`tombstone = true`); non-UTF-8 keys keep their bytes
(`key_raw`). `check_bronze_topics` then proves no (partition, offset) landed twice.
One mapped task per topic; started by the `kafka/shop` asset (swap in a timetable, e.g.
`*/10 * * * *`, for a real cluster).
"""

from __future__ import annotations

from airflow.sdk import dag, task

from lakehouse_airflow.assets import KAFKA_SHOP, configured_topics, table_asset
from lakehouse_airflow.defaults import dag_args

TOPICS = configured_topics()  # from sources.yaml at parse time: one mapped task per topic
BRONZE_TOPICS = [table_asset(f"bronze/{t}") for t in TOPICS]


@dag(**dag_args("ingest_kafka", doc_md=__doc__, schedule=[KAFKA_SHOP], tags=["ingest", "bronze", "kafka"]))
def ingest_kafka():
    @task(map_index_template="{{ task.op_kwargs['topic'] }}")
    def append_new_messages_to_bronze(topic: str, dag_run=None):
        from airflow.sdk import BaseHook

        from include.lakehouse.ingest.kafka import ingest_topic

        config = dict(BaseHook.get_connection("kafka_default").extra_dejson)
        from lakehouse_airflow.reports import topic_ingested

        result = ingest_topic(topic, config, batch_id=dag_run.run_id)
        return {**result, **topic_ingested(result)}

    # one asset event per table per run, after every topic landed and was checked (on a mapped
    # task each instance would announce every table: one downstream run per instance)
    @task(outlets=BRONZE_TOPICS)
    def check_bronze_topics():
        from include.lakehouse.ingest.kafka import check_topic_bronze, topics

        checked = [check_topic_bronze(t) for t in sorted(topics())]
        return {"topics": checked}

    append_new_messages_to_bronze.expand(topic=TOPICS) >> check_bronze_topics()


ingest_kafka()
