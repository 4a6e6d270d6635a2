"""Publishing registered Delta tables as Iceberg and Hudi tables, incrementally, with a record.

Owns the order of a publish (Iceberg, then Hudi, then expiry of Iceberg snapshots past the
Delta table's vacuum retention), the publish record in `ops/format_publish_log` (one row per
table, format and publish that translated something: versions, zero copy or rewrite and
why) and the vacuum pin (`pinned_files`, consulted by maintenance.operations.vacuum). Each format keeps
its own translation state in its own commit, so a rerun is a no-op and a crash mid-publish
leaves every format at a complete earlier version.

Never writes Delta data files and never deletes a file.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from include.lakehouse.formats import hudi, iceberg
from include.lakehouse.tables.delta import append, try_open
from include.lakehouse.tables.registry import folder, load_registry, name_of, resolve

log = logging.getLogger(__name__)
FORMATS = ("iceberg", "hudi")
PUBLISH_LOG = "ops/format_publish_log"
PUBLISHED_LAYERS = ("gold",)


def publishable_tables(layers: tuple[str, ...] = PUBLISHED_LAYERS) -> list[str]:
    """Registered tables of the published layers (gold by default)."""
    return sorted(name for name, spec in load_registry().items() if spec.layer in layers)


def publish_table(name: str, *, formats: tuple[str, ...] = FORMATS, upto: int | None = None,
                  run_id: str | None = None) -> dict[str, Any]:
    """Translate the new Delta versions of one table into every format; record what was done."""
    uri, spec = resolve(name)
    name = name_of(uri)  # a path under the lakehouse gets its <layer>/<name>
    if try_open(uri) is None:
        return {"table": name, "status": "skipped", "detail": "no Delta table yet"}
    keys = list(spec.keys) if spec else []
    results = []
    for fmt in formats:
        started = time.perf_counter()
        if fmt == "iceberg":
            result = iceberg.translate(name, uri, upto=upto)
            retention = spec.maintenance.vacuum_retention_hours if spec else 168
            result["snapshots_expired"] = iceberg.expire(name, uri, retention)
        elif fmt == "hudi":
            result = hudi.translate(name, uri, keys=keys, upto=upto)
        else:
            raise ValueError(f"unknown format {fmt!r}; choose from {FORMATS}")
        result["seconds"] = round(time.perf_counter() - started, 3)
        results.append(result)
    _record(name, results, run_id)
    return {"table": name, "status": "published", "formats": results}


def _record(name: str, results: list[dict[str, Any]], run_id: str | None) -> None:
    """One row per format that translated something; exactly once per (table, format, version)."""
    now = datetime.now(timezone.utc)
    for r in results:
        if not r["snapshots_written"]:
            continue
        row = {
            "table_name": name, "format": r["format"],
            "from_delta_version": r["from_version"], "to_delta_version": r["to_version"],
            "snapshots_written": r["snapshots_written"], "mode": r["mode"], "rewrite_reason": r.get("reason"),
            "seconds": float(r["seconds"]), "run_id": run_id, "published_at": now,
        }
        schema = pa.schema([("table_name", pa.string()), ("format", pa.string()), ("from_delta_version", pa.int64()),
                            ("to_delta_version", pa.int64()), ("snapshots_written", pa.int64()),
                            ("mode", pa.string()), ("rewrite_reason", pa.string()), ("seconds", pa.float64()),
                            ("run_id", pa.string()), ("published_at", pa.timestamp("us", "UTC"))])
        append(PUBLISH_LOG, pa.Table.from_pylist([row], schema=schema),
               app_id=f"format_publish.{name}.{r['format']}", app_version=int(r["to_version"]) + 1)


def publish_all(layers: tuple[str, ...] = PUBLISHED_LAYERS, run_id: str | None = None) -> list[dict[str, Any]]:
    """Publish every registered table of the layers; one failing table never stops the others."""
    out = []
    for name in publishable_tables(layers):
        try:
            out.append(publish_table(name, run_id=run_id))
        except Exception as exc:  # noqa: BLE001 - reported per table, the others go on
            log.exception("publish %s failed", name)
            out.append({"table": name, "status": "failed", "detail": f"{type(exc).__name__}: {exc}"})
    return out


def pinned_files(uri: str) -> set[str]:
    """Files of the Delta table at `uri` that an Iceberg snapshot still references (vacuum pin).
    Hudi holds its own hardlinks, so it pins nothing. Cheap when nothing was ever published."""
    if not os.environ.get("LAKEHOUSE_ICEBERG_CATALOG"):
        warehouse = folder("warehouse")
        if "://" not in warehouse and not os.path.exists(os.path.join(warehouse, "catalog.db")):
            return set()
    return iceberg.referenced_files(name_of(uri))


__all__ = ["publish_table", "publish_all", "publishable_tables", "pinned_files"]
