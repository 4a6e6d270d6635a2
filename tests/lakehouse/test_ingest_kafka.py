"""Kafka to bronze with the real embedded broker: exactly once across reruns and crashes,
poison messages quarantined, tombstones kept, clear errors for a dead broker or unknown topic."""

from __future__ import annotations

import json

import pytest
from confluent_kafka import Producer
from deltalake import DeltaTable

from include.lakehouse import delta
from include.lakehouse.errors import LakehouseError
from include.lakehouse.ingest.kafka import check_topic_bronze, ingest_topic
from include.lakehouse.ingest.producer import publish_day
from include.lakehouse.shop import ShopSource

TOPIC = "shop.order_events"


def produce(config, start: int, count: int) -> None:
    producer = Producer(config)
    for i in range(start, start + count):
        producer.produce(TOPIC, key=str(i % 17), value=json.dumps({"n": i}))
    producer.flush(30)


def bronze_numbers(root) -> list[int]:
    table = DeltaTable(str(root / "bronze" / TOPIC)).to_pyarrow_table()
    return sorted(json.loads(p)["n"] for p in table.column("payload").to_pylist() if p)


def fast(config):
    return dict(idle_polls=1, poll_seconds=1.0)


def test_two_runs_crash_and_more_messages_give_exactly_each_message_once(lakehouse_root, kafka_broker, monkeypatch):
    produce(kafka_broker, 0, 300)
    first = ingest_topic(TOPIC, kafka_broker, **fast(kafka_broker))
    second = ingest_topic(TOPIC, kafka_broker, **fast(kafka_broker))
    assert first["rows_inserted"] == 300 and second["rows_inserted"] == 0
    assert bronze_numbers(lakehouse_root) == list(range(300))
    assert first["partitions"] == 3 and len(first["next_offsets"]) == 3

    produce(kafka_broker, 300, 50)
    real_append = delta.append

    def append_then_crash(*args, **kwargs):  # the task dies after the Delta commit, before it ends
        result = real_append(*args, **kwargs)
        raise RuntimeError("worker killed")

    monkeypatch.setattr("include.lakehouse.ingest.kafka.append", append_then_crash)
    with pytest.raises(RuntimeError, match="worker killed"):
        ingest_topic(TOPIC, kafka_broker, **fast(kafka_broker))
    monkeypatch.setattr("include.lakehouse.ingest.kafka.append", real_append)
    rerun = ingest_topic(TOPIC, kafka_broker, **fast(kafka_broker))
    assert rerun["rows_inserted"] == 0
    assert bronze_numbers(lakehouse_root) == list(range(350))
    assert check_topic_bronze(TOPIC)["rows"] == 350


def test_a_poison_message_is_quarantined_and_the_rest_flow(lakehouse_root, kafka_broker):
    producer = Producer(kafka_broker)
    producer.produce(TOPIC, key="a", value=json.dumps({"n": 1}), partition=0)
    producer.produce(TOPIC, key="b", value=b"\xff\xfe not json", partition=0)
    producer.produce(TOPIC, key="c", value=None, partition=0)  # tombstone
    producer.produce(TOPIC, key="d", value=json.dumps({"n": 2}), partition=0)
    producer.flush(30)
    result = ingest_topic(TOPIC, kafka_broker, **fast(kafka_broker))
    assert (result["rows_inserted"], result["rows_quarantined"]) == (3, 1)
    bronze = DeltaTable(str(lakehouse_root / "bronze" / TOPIC)).to_pyarrow_table().sort_by("offset").to_pylist()
    assert [(r["key"], r["tombstone"]) for r in bronze] == [("a", False), ("c", True), ("d", False)]
    bad = DeltaTable(str(lakehouse_root / "quarantine" / TOPIC)).to_pyarrow_table().to_pylist()
    assert bad[0]["key"] == "b" and "UTF-8" in bad[0]["_reason"] and bad[0]["offset"] == 1


def test_producer_publishes_a_day_once_and_debezium_topics_land_in_bronze(lakehouse_root, kafka_broker):
    producer = Producer(kafka_broker)
    sent = publish_day(producer, "shop.public.customers", "2024-01-04", scale=0.1)
    again = publish_day(producer, "shop.public.customers", "2024-01-04", scale=0.1)
    assert sent["messages"] > 0 and sent["with_snapshot"] and again["already_delivered"]
    later = publish_day(producer, "shop.public.customers", "2024-01-05", scale=0.1)
    assert not later["with_snapshot"]  # the connector snapshots once, then streams
    result = ingest_topic("shop.public.customers", kafka_broker, **fast(kafka_broker))
    assert result["rows_inserted"] == sent["messages"] + later["messages"]
    rows = DeltaTable(str(lakehouse_root / "bronze" / "shop.public.customers")).to_pyarrow_table().to_pylist()
    envelopes = [json.loads(r["payload"]) for r in rows if r["payload"]]
    assert {e["op"] for e in envelopes} <= {"r", "c", "u", "d"} and all("lsn" in e["source"] for e in envelopes)
    snapshot = [e for e in envelopes if e["op"] == "r"]  # the customers that existed before 2024-01-04
    assert len(snapshot) == len(ShopSource(scale=0.1).customers("2024-01-03"))
    assert max(e["source"]["lsn"] for e in snapshot) < min(e["source"]["lsn"] for e in envelopes if e["op"] != "r")
    assert sum(r["tombstone"] for r in rows) == sum(e["op"] == "d" for e in envelopes)


def test_dead_broker_and_unknown_topic_are_clear_errors(lakehouse_root, kafka_broker):
    with pytest.raises(LakehouseError, match="topic 'shop.nope' does not exist"):
        ingest_topic("shop.nope", kafka_broker)
    with pytest.raises(LakehouseError, match="unreachable"):
        ingest_topic(TOPIC, {"bootstrap.servers": "127.0.0.1:9"}, )
    assert not DeltaTable.is_deltatable(str(lakehouse_root / "bronze" / TOPIC))


def test_publish_script_sends_every_topic_once(lakehouse_root, kafka_broker, capsys):
    from scripts.publish_shop import main

    assert main(["--bootstrap", kafka_broker["bootstrap.servers"], "--day", "2024-01-01", "--scale", "0.1"]) == 0
    first = capsys.readouterr().out
    assert "shop.public.customers: 100 messages" in first and "shop.order_events:" in first
    assert main(["--bootstrap", kafka_broker["bootstrap.servers"], "--day", "2024-01-01", "--scale", "0.1"]) == 0
    assert capsys.readouterr().out.count("already delivered") == 4
    assert main(["--bootstrap", "127.0.0.1:9", "--day", "2024-01-01"]) == 2
