"""Streaming metrics: one row per (query, micro-batch) in ops/streaming_metrics, and the
thresholds that turn them into alerts.

The sink records what it saw while committing a batch (input rows, late and quarantined rows,
the watermark it checked lateness against, end-to-end latency from the message's log time to
the commit); Spark's own progress (processing rate, state rows, rows dropped by the watermark)
is merged into the same rows after the run. Merged by (query_id, batch_id), so a replayed batch
or a rerun leaves one row. Must never decide anything on its own: `breaches` only reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from include.lakehouse.tables.delta import merge_upsert, try_open

METRICS_TABLE = "ops/streaming_metrics"
KEYS = ["query_id", "batch_id"]
BATCH_SCHEMA = pa.schema([
    ("query_name", pa.string()), ("query_id", pa.string()), ("batch_id", pa.int64()),
    ("input_rows", pa.int64()), ("valid_events", pa.int64()), ("quarantined_rows", pa.int64()),
    ("late_rows", pa.int64()), ("late_events", pa.int64()), ("windows_updated", pa.int64()),
    ("watermark", pa.timestamp("us", tz="UTC")), ("max_event_time", pa.timestamp("us", tz="UTC")),
    ("latency_p50_s", pa.float64()), ("latency_p95_s", pa.float64()),
    ("committed_at", pa.timestamp("us", tz="UTC")),
])
PROGRESS_SCHEMA = pa.schema([
    ("query_name", pa.string()), ("query_id", pa.string()), ("batch_id", pa.int64()),
    ("num_input_rows", pa.int64()), ("input_rows_per_second", pa.float64()),
    ("processed_rows_per_second", pa.float64()), ("state_rows", pa.int64()),
    ("rows_dropped_by_watermark", pa.int64()), ("batch_duration_ms", pa.int64()),
])


@dataclass(frozen=True)
class Thresholds:
    """When a run of a streaming query alerts (per micro-batch)."""

    latency_p95_seconds: float = 900.0
    late_share: float = 0.05


def record_batch(query_name: str, query_id: str, outcome) -> None:
    row = {"query_name": query_name, "query_id": query_id, "batch_id": outcome.batch_id,
           "input_rows": outcome.input_rows, "valid_events": outcome.valid_events,
           "quarantined_rows": outcome.quarantined, "late_rows": outcome.late_rows,
           "late_events": outcome.late_events, "windows_updated": outcome.windows_updated,
           "watermark": datetime.fromtimestamp(outcome.watermark_ms / 1000, timezone.utc),
           "max_event_time": outcome.max_event_time, "latency_p50_s": outcome.latency_p50_s,
           "latency_p95_s": outcome.latency_p95_s, "committed_at": outcome.committed_at}
    merge_upsert(METRICS_TABLE, pa.Table.from_pylist([row], schema=BATCH_SCHEMA), keys=KEYS)


def record_progress(query_name: str, query_id: str, progress: list[dict[str, Any]]) -> int:
    """Spark's StreamingQueryProgress of each batch of this run into the batch's row."""
    rows = []
    for p in progress:
        ops = p.get("stateOperators") or []
        rows.append({"query_name": query_name, "query_id": query_id, "batch_id": int(p["batchId"]),
                     "num_input_rows": int(p.get("numInputRows") or 0),
                     "input_rows_per_second": float(p.get("inputRowsPerSecond") or 0.0),
                     "processed_rows_per_second": float(p.get("processedRowsPerSecond") or 0.0),
                     "state_rows": sum(int(op.get("numRowsTotal") or 0) for op in ops),
                     "rows_dropped_by_watermark": sum(int(op.get("numRowsDroppedByWatermark") or 0) for op in ops),
                     "batch_duration_ms": int((p.get("durationMs") or {}).get("triggerExecution") or 0)})
    if rows:
        merge_upsert(METRICS_TABLE, pa.Table.from_pylist(rows, schema=PROGRESS_SCHEMA), keys=KEYS)
    return len(rows)


def batches(query_id: str | None = None) -> list[dict[str, Any]]:
    table = try_open(METRICS_TABLE)
    if table is None:
        return []
    rows = table.to_pyarrow_table().to_pylist()
    return sorted((r for r in rows if query_id is None or r["query_id"] == query_id), key=lambda r: r["batch_id"])


def breaches(rows: list[dict[str, Any]], thresholds: Thresholds = Thresholds()) -> list[str]:
    """One line per micro-batch whose latency or late share crossed a threshold."""
    lines = []
    for r in rows:
        p95 = r.get("latency_p95_s")
        if p95 is not None and p95 > thresholds.latency_p95_seconds:
            lines.append(f"{r['query_name']} batch {r['batch_id']}: end-to-end latency p95 {p95:.1f} s > "
                         f"{thresholds.latency_p95_seconds:.0f} s")
        valid = (r.get("valid_events") or 0)
        late = r.get("late_events") or 0
        if valid and late / valid > thresholds.late_share:
            lines.append(f"{r['query_name']} batch {r['batch_id']}: {late} of {valid} events late "
                         f"({late / valid:.1%} > {thresholds.late_share:.0%})")
    return lines
