"""The Kafka AssetWatcher's apply function: one asset event per burst, never the payload."""

from __future__ import annotations

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
