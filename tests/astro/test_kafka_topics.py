"""The compose's Kafka has topic auto-creation off, like most production clusters: the project
must create its topics itself, with the partitions and retention sources.yaml declares. The
embedded broker stands in for it with auto-creation off on the client side
(`allow.auto.create.topics=false`: the broker then creates nothing a client asks for)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def bare_broker(tmp_path):
    """An embedded broker with no topics, reached with auto-creation off."""
    from confluent_kafka.admin import AdminClient

    from scripts import kafka_broker

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(kafka_broker.broker_cmd(port), stdout=(tmp_path / "kafka.log").open("w"),
                            stderr=subprocess.STDOUT)
    config = {**kafka_broker.client_config(port), "allow.auto.create.topics": False}
    deadline = time.time() + 30
    while True:
        try:
            AdminClient(config).list_topics(timeout=2)
            break
        except Exception:
            assert time.time() < deadline, "embedded broker did not start"
            time.sleep(0.3)
    yield config
    proc.kill()
    proc.wait(timeout=10)


def test_shop_source_creates_its_topics_before_publishing(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(str(ROOT / "dags" / "shop_source.py")).get_dag("shop_source")
    publish = dag.get_task("publish_shop_changes_to_kafka")
    assert "create_kafka_topics" in publish.upstream_task_ids


def test_topics_get_the_declared_partitions_and_retention_and_a_rerun_changes_nothing(bare_broker):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, ConfigResource

    from include.lakehouse.source.kafka_topics import ensure_topics, topic_specs

    admin = AdminClient(bare_broker)
    specs = {s.name: s for s in topic_specs()}
    assert ensure_topics(admin)["created"] == sorted(specs)
    topics = admin.list_topics(timeout=10).topics
    assert {name: len(topics[name].partitions) for name in specs} == {n: s.partitions for n, s in specs.items()}
    for name, future in admin.describe_configs([ConfigResource("topic", n) for n in specs]).items():
        assert future.result(timeout=10)["retention.ms"].value == str(specs[name.name].retention_ms)
    again = ensure_topics(admin)
    assert again["created"] == [] and again["existing"] == sorted(specs) and again["differs"] == []
    # and now the shop can publish: the broker no longer refuses its topics
    errors = []
    producer = Producer({**bare_broker, "message.timeout.ms": 10000})
    producer.produce("shop.order_events", b"{}", on_delivery=lambda err, msg: errors.append(err))
    assert producer.flush(15) == 0 and errors == [None]


def test_without_the_topics_publishing_fails_on_a_cluster_that_does_not_auto_create(bare_broker):
    """What the first shop_source run met under `astro dev start` before it created topics."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient

    errors = []
    producer = Producer({**bare_broker, "message.timeout.ms": 3000})
    producer.produce("shop.order_events", b"{}", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(10)
    assert errors and errors[0] is not None
    assert "shop.order_events" not in AdminClient(bare_broker).list_topics(timeout=5).topics


def test_a_topic_with_other_partitions_is_reported_not_changed(bare_broker):
    from confluent_kafka.admin import AdminClient, NewTopic

    from include.lakehouse.source.kafka_topics import ensure_topics

    admin = AdminClient(bare_broker)
    for future in admin.create_topics([NewTopic("shop.order_events", num_partitions=1)]).values():
        future.result(timeout=10)
    result = ensure_topics(admin)
    assert "shop.order_events" in result["existing"]
    assert result["differs"] == ["shop.order_events: 1 partitions on the cluster, 3 in sources.yaml (left as is)"]
    assert len(admin.list_topics(timeout=10).topics["shop.order_events"].partitions) == 1
