"""Assets that Kafka topics update on their own: an AssetWatcher per topic that should start
DAGs when events arrive (common-messaging `MessageQueueTrigger`, Kafka provider behind it).

The trigger runs in the triggerer and joins a consumer group of the `kafka_default` connection
(slow on the embedded broker: ~20 s for the first event); it only announces that something
arrived - the DAG it starts reads the topic by itself, from its own positions.
"""

from __future__ import annotations

import os
import time
from typing import Any

from airflow.sdk import Asset, AssetWatcher


MIN_SECONDS_BETWEEN_EVENTS = float(os.environ.get("LAKEHOUSE_WATCH_MIN_INTERVAL", "60"))
_last_event: dict[str, float] = {}  # per topic, in the triggerer process


def message_summary(message) -> dict[str, Any] | None:
    """The asset event for a message (where it is, never its payload), at most one per topic per
    MIN_SECONDS_BETWEEN_EVENTS: the Kafka trigger fires per message, and a burst of thousands
    must start one run (which reads everything there is), not thousands. A message skipped
    here is read by the next run: the next event's or the schedule's."""
    now = time.monotonic()
    topic = message.topic()
    if now - _last_event.get(topic, float("-inf")) < MIN_SECONDS_BETWEEN_EVENTS:
        return None
    _last_event[topic] = now
    return {"topic": topic, "partition": message.partition(), "offset": message.offset()}


def topic_asset(topic: str, *, conn_id: str = "kafka_default") -> Asset:
    """`kafka://<conn>/<topic>`, updated by a watcher whenever a message arrives on the topic."""
    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

    trigger = MessageQueueTrigger(scheme="kafka", topics=[topic], kafka_config_id=conn_id,
                                  apply_function="lakehouse_airflow.watchers.message_summary",
                                  # the trigger sleeps poll_interval after each message that fires nothing:
                                  # at 1 s a backlog was walked one message a second, firing again every
                                  # MIN_SECONDS_BETWEEN_EVENTS - a burst started a run a minute, not one
                                  poll_timeout=1, poll_interval=0)
    return Asset(name=f"kafka/{topic}", uri=f"kafka://{conn_id}/{topic}", group="kafka",
                 watchers=[AssetWatcher(name=f"{topic.replace('.', '_')}_arrivals", trigger=trigger)])
