"""The Kafka AssetWatcher's apply function: one asset event per burst, never the payload."""

from __future__ import annotations

import pytest
from lakehouse_airflow import watchers


class Message:
    def __init__(self, offset: int, topic: str = "shop.order_events"):
        self._offset, self._topic = offset, topic

    def topic(self):
        return self._topic

    def partition(self):
        return 0

    def offset(self):
        return self._offset

    def value(self):
        return b'{"secret": "payload"}'


def test_a_burst_of_messages_makes_one_asset_event_without_payload(monkeypatch):
    monkeypatch.setattr(watchers, "_last_event", {})
    events = [watchers.message_summary(Message(i)) for i in range(100)]
    fired = [e for e in events if e]
    assert fired == [{"topic": "shop.order_events", "partition": 0, "offset": 0}]
    assert watchers.message_summary(Message(0, topic="other")) is not None  # per topic


def test_the_topic_asset_is_watched_by_the_kafka_trigger():
    asset = watchers.topic_asset("shop.order_events")
    [watcher] = asset.watchers
    trigger = watcher.trigger.trigger  # common-messaging dispatches scheme "kafka" to the provider's trigger
    assert type(trigger).__name__ == "AwaitMessageTrigger"
    assert trigger.topics == ["shop.order_events"] and trigger.apply_function.endswith("message_summary")
    assert asset.uri == "kafka://kafka_default/shop.order_events"


@pytest.mark.slow  # ~70 s: two consumer-group joins on the embedded broker
def test_a_backlog_is_walked_at_once_so_a_burst_starts_one_run(kafka_broker, monkeypatch):
    """The trigger sleeps `poll_interval` after every message that fires nothing: at 1 s it walked
    a backlog one message a second and fired again each minute (the demo's 788 order events
    started a streaming run every minute for 13 minutes). Real broker, the provider's trigger."""
    import asyncio
    import json
    import time

    from confluent_kafka import Consumer, Producer, TopicPartition

    topic, count = "shop.order_events", 200
    producer = Producer(kafka_broker)
    for i in range(count):
        producer.produce(topic, key=str(i).encode(), value=json.dumps({"i": i}).encode())
    producer.flush(30)
    config = {**kafka_broker, "group.id": "watch-test", "auto.offset.reset": "earliest"}
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT", json.dumps({"conn_type": "kafka", "extra": config}))
    monkeypatch.setattr(watchers, "_last_event", {})

    def trigger():
        [watcher] = watchers.topic_asset(topic).watchers
        return watcher.trigger.trigger

    async def first_event(seconds: float):  # as the triggerer runs it: until an event, then cleanup
        watch = trigger()
        run = watch.run()
        try:
            return await asyncio.wait_for(run.__anext__(), seconds)
        except asyncio.TimeoutError:
            return None
        finally:
            await run.aclose()
            await watch.cleanup()  # leaves the consumer group: the next instance is assigned at once

    started = time.monotonic()
    assert asyncio.run(first_event(60)) is not None  # the burst's first message fires
    assert time.monotonic() - started < 60
    assert asyncio.run(first_event(40)) is None  # the rest of the burst fires nothing ...
    consumer = Consumer(config)  # ... and was walked to its end meanwhile (committed by the trigger)
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
    consumer.close()
    assert sum(max(tp.offset, 0) for tp in committed) == count
