"""The project's Kafka topics, created by the project: a real cluster (the compose's Kafka, a
managed one) usually has topic auto-creation off, and auto-created topics would get the
broker's default partitions and retention instead of ours.

Owns turning sources.yaml's `topics:` (partitions, replication factor, retention) into
topics on whatever broker a client config points at. Idempotent: a topic that exists is
left as it is (changing partitions would move keys between partitions and break per-key
order), and a difference from sources.yaml is reported, never silently "fixed".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from include.lakehouse.config import load_sources
from include.lakehouse.errors import LakehouseError



@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    retention_ms: int

    @property
    def config(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": "delete"}


def topic_specs() -> list[TopicSpec]:
    """sources.yaml topics, `topic_defaults` filled in (validated by config_files.SourcesFile)."""
    return [TopicSpec(name=name, partitions=spec["partitions"], replication_factor=spec["replication_factor"],
                      retention_ms=spec["retention_ms"])
            for name, spec in load_sources()["topics"].items()]


def ensure_topics(admin) -> dict[str, Any]:
    """Create the configured topics missing on the cluster `admin` (a confluent-kafka
    AdminClient) talks to, with their partitions, replication and retention; report the rest."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    try:
        existing = admin.list_topics(timeout=15).topics
    except KafkaException as exc:
        raise LakehouseError(f"Kafka is unreachable while creating topics ({exc}): check the kafka_default "
                             f"connection") from None
    specs = topic_specs()
    missing = [s for s in specs if s.name not in existing]
    created = []
    if missing:
        futures = admin.create_topics([NewTopic(s.name, num_partitions=s.partitions,
                                                replication_factor=s.replication_factor, config=s.config)
                                       for s in missing])
        for name, future in futures.items():
            try:
                future.result(timeout=30)
                created.append(name)
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":  # another writer created it meanwhile
                    raise LakehouseError(f"creating Kafka topic {name} failed: {exc}") from None
    differs = [f"{s.name}: {len(existing[s.name].partitions)} partitions on the cluster, {s.partitions} in "
               f"sources.yaml (left as is)" for s in specs
               if s.name in existing and len(existing[s.name].partitions) != s.partitions]
    return {"created": sorted(created), "existing": sorted(s.name for s in specs if s.name in existing),
            "differs": differs}
