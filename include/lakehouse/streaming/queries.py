"""Running a streaming query the project's way, and reading what its checkpoint records.

Checkpoints live with the lakehouse (`<LAKEHOUSE_ROOT>/_checkpoints/<query name>`), next to the
tables whose positions they are. The checkpoint's metadata holds the query id (stable across
restarts: the sinks' app id), its offset log the planned range and watermark of every
micro-batch (written before the batch runs). Never writes a table: the sinks do.
"""

from __future__ import annotations

import json
import os
from typing import Any

from include.lakehouse.tables.registry import folder


def checkpoint_location(query_name: str) -> str:
    return folder("_checkpoints", query_name)


def query_id(checkpoint: str) -> str:
    """The query's id as its checkpoint records it."""
    path = os.path.join(checkpoint.removeprefix("file://"), "metadata")
    with open(path) as fh:
        return json.loads(fh.readline())["id"]


def offset_log_entry(checkpoint: str, batch_id: int) -> dict[str, Any] | None:
    """Spark's record of micro-batch `batch_id`: {"metadata": {batchWatermarkMs, ...}, "sources": [offsets]}."""
    path = os.path.join(checkpoint.removeprefix("file://"), "offsets", str(batch_id))
    if batch_id < 0 or not os.path.exists(path):
        return None
    with open(path) as fh:
        lines = fh.read().splitlines()
    return {"metadata": json.loads(lines[1]), "sources": [json.loads(x) if x != "-" else None for x in lines[2:]]}


def run_to_end(writer, *, trigger: str, query_name: str, timeout: float | None = None) -> tuple[Any, list[dict]]:
    """Start `writer` with `availableNow` (everything there is, then stop: what Airflow schedules)
    or a processingTime interval such as "30 seconds" (continuous, on a cluster), wait for it and
    record Spark's progress of every batch in ops/streaming_metrics. Returns (query, progress)."""
    from include.lakehouse.streaming.metrics import record_progress

    writer = writer.trigger(availableNow=True) if trigger == "availableNow" else writer.trigger(processingTime=trigger)
    query = writer.start()
    query.awaitTermination(timeout)
    if query.exception() is not None:
        raise RuntimeError(f"streaming query {query_name} failed: {query.exception()}")
    progress = [json.loads(p.json) for p in query.recentProgress]
    record_progress(query_name, str(query.id), progress)
    return query, progress
