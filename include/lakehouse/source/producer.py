"""The shop publishing to Kafka: order events and Debezium change envelopes of its tables.

`shop_messages` builds the (key, value) pairs of one topic for one day, as Debezium and an
event service would (Debezium keys are JSON objects of the primary key; a delete is
followed by a tombstone). `publish_day` sends them once per (topic, day): what was
delivered is recorded in `ops/source_deliveries`, so a rerun never re-sends a day. The first
delivery of a reference table (customers, products) to a lakehouse starts with Debezium's
initial snapshot of the rows that existed before that day, as a newly started connector does
(orders: the last 120 days of them).
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import pyarrow as pa

from include.lakehouse.errors import LakehouseError
from include.lakehouse.source.generator import ShopSource, bulk_build
from include.lakehouse.tables.delta import append, position, try_open

DELIVERIES = "ops/source_deliveries"
EVENTS_TOPIC = "shop.order_events"
# The shop's own tables and the generator method of each one's change stream (the source
# system's schema; which topic carries a table, and its key, is sources.yaml's cdc section).
_CHANGE_STREAMS = {"customers": "customer_changes", "orders": "order_changes", "products": "product_changes"}


def _cdc_topics() -> dict[str, tuple[str, str]]:
    """topic -> (shop table, key column) of the Debezium topics sources.yaml declares for the shop."""
    from include.lakehouse.config import load_sources

    return {spec["topic"]: (table, spec["keys"][0]) for table, spec in load_sources()["cdc"].items()
            if table in _CHANGE_STREAMS}


def published_topics() -> list[str]:
    """The configured topics (sources.yaml) that the shop publishes, in a stable order."""
    from include.lakehouse.config import load_sources

    cdc = _cdc_topics()
    return [t for t in sorted(load_sources()["topics"]) if t == EVENTS_TOPIC or t in cdc]


def shop_messages(topic: str, day: str, *, scale: float = 1.0,
                  snapshot: bool = False) -> Iterator[tuple[str, str | None]]:
    """(key, value) pairs of `topic` for `day`; `snapshot`: the initial snapshot first."""
    with bulk_build():  # tens of thousands of envelopes and their JSON on a first delivery
        messages = list(_messages(topic, day, scale, snapshot))
    yield from messages


def _messages(topic: str, day: str, scale: float, snapshot: bool) -> Iterator[tuple[str, str | None]]:
    shop = ShopSource(scale=scale)
    if topic == EVENTS_TOPIC:
        for event in shop.order_events(day):
            yield str(event["order_id"]), json.dumps(event)
        return
    cdc = _cdc_topics()
    if topic not in cdc:
        raise LakehouseError(f"the shop does not publish topic '{topic}'; it publishes "
                             f"{sorted([EVENTS_TOPIC, *cdc])}")
    table, key_column = cdc[topic]
    envelopes = getattr(shop, _CHANGE_STREAMS[table])(day)
    if snapshot:
        envelopes = shop.snapshot(table, day) + envelopes
    key_start = "{" + json.dumps(key_column) + ": "  # an integer key's JSON, as json.dumps writes it
    for envelope in envelopes:
        image = envelope["after"] or envelope["before"]
        value = image[key_column]
        key = f"{key_start}{value!r}}}" if type(value) is int else json.dumps({key_column: value})
        yield key, json.dumps(envelope)
        if envelope["op"] == "d":
            yield key, None  # Debezium's tombstone, for log compaction


def publish_day(producer, topic: str, day: str, *, scale: float = 1.0) -> dict[str, Any]:
    """Send one topic's messages for `day` unless they were delivered before."""
    delivery = f"deliver.{topic}.{day}.{scale}"
    log = try_open(DELIVERIES)
    if position(log, delivery) is not None:
        return {"topic": topic, "day": day, "messages": 0, "already_delivered": True}
    first = log is None or not log.to_pyarrow_table(columns=["topic"]).filter(
        pa.compute.equal(pa.compute.field("topic"), topic)).num_rows
    errors: list[str] = []

    def on_delivery(err, _msg):
        if err is not None:
            errors.append(str(err))

    count = 0
    for key, value in shop_messages(topic, day, scale=scale, snapshot=first):
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
        producer.poll(0)
        count += 1
    remaining = producer.flush(60)
    if errors or remaining:
        raise LakehouseError(f"publishing {topic} for {day}: {len(errors)} failed and {remaining} undelivered "
                             f"message(s), e.g. {errors[:1]}; nothing is recorded as delivered, rerun to resend")
    append(DELIVERIES, pa.table({"topic": [topic], "day": [day], "messages": pa.array([count], pa.int64())}),
           app_id=delivery)
    return {"topic": topic, "day": day, "messages": count, "already_delivered": False,
            "with_snapshot": bool(first and topic in _cdc_topics())}
