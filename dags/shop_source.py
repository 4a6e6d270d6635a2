"""
### shop_source

The synthetic shop as an upstream system. Every day it **delivers the day's orders file**
into `landing/orders` (CSV, JSON lines or Parquet, rotating by day, about 2% malformed
rows, as real feeds are) and **publishes to Kafka** (connection `kafka_default`) its order
events (`shop.order_events`) and the Debezium change envelopes of its tables
(`shop.public.customers`, `shop.public.orders`, `shop.public.products`), after creating
any of those topics the cluster lacks with the partitions and retention of
`include/lakehouse/sources.yaml` (real clusters, like the compose's Kafka, do not auto-create
them). Nothing already delivered is sent again. Emits `landing/orders` (starts `ingest_files`) and `kafka/shop`
(starts `ingest_kafka`).
"""

from __future__ import annotations

from airflow.sdk import dag, task

from lakehouse_airflow.assets import KAFKA_SHOP, LANDING_ORDERS
from lakehouse_airflow.defaults import dag_args, run_day



@dag(**dag_args("shop_source", doc_md=__doc__, schedule="@daily", tags=["source", "shop"]))
def shop_source():
    @task(outlets=[LANDING_ORDERS])
    def deliver_orders_file_to_landing(dag_run=None):
        from include.lakehouse.source.landing import deliver_orders_file

        return deliver_orders_file(run_day(dag_run))

    @task
    def create_kafka_topics():
        from airflow.providers.apache.kafka.hooks.client import KafkaAdminClientHook

        from include.lakehouse.source.kafka_topics import ensure_topics

        from lakehouse_airflow.reports import topics_created

        result = ensure_topics(KafkaAdminClientHook(kafka_config_id="kafka_default").get_conn)
        return {**result, **topics_created(result)}

    @task(outlets=[KAFKA_SHOP])
    def publish_shop_changes_to_kafka(dag_run=None):
        from airflow.providers.apache.kafka.hooks.produce import KafkaProducerHook

        from include.lakehouse.source.generator import ShopSource
        from include.lakehouse.source.producer import publish_day, published_topics

        producer = KafkaProducerHook(kafka_config_id="kafka_default").get_producer()
        day = ShopSource().day_for(run_day(dag_run))
        from lakehouse_airflow.reports import shop_published

        sent = [publish_day(producer, topic, day) for topic in published_topics()]
        return {"topics": sent, **shop_published(sent)}

    deliver_orders_file_to_landing()
    create_kafka_topics() >> publish_shop_changes_to_kafka()


shop_source()
