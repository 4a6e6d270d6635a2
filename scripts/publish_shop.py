"""Publish the synthetic shop's Kafka messages for one day, outside Airflow.

    .venv/bin/python scripts/publish_shop.py --bootstrap 127.0.0.1:19092 --day 2024-01-02 [--scale 1.0]

Sends order events and Debezium change envelopes to shop.order_events and
shop.public.{customers,orders,products} (creating missing topics), once per topic and day,
exactly as the shop_source DAG does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient

    from include.lakehouse.errors import LakehouseError
    from include.lakehouse.ingest.kafka import topics
    from include.lakehouse.source.kafka_topics import ensure_topics
    from include.lakehouse.source.producer import publish_day

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--day", required=True, help="shop day, YYYY-MM-DD (2024-01-01 is opening day)")
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    config = {"bootstrap.servers": args.bootstrap}
    try:
        ensure_topics(AdminClient(config))
        producer = Producer(config)
        for topic in sorted(topics()):
            sent = publish_day(producer, topic, args.day, scale=args.scale)
            print(f"{topic}: {'already delivered' if sent['already_delivered'] else str(sent['messages']) + ' messages'}")
    except LakehouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
