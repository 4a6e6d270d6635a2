"""Hudi copy-on-write copies of lakehouse Delta tables, built from the Delta log (read-only Hudi).

There is no Hudi writer on PyPI: hudi-rs (`hudi`) only reads. So a Hudi table here is made
by metadata translation: for each Delta version, the parquet files Delta added become new
Hudi file groups (hardlinked under Hudi's file naming `<fileId>_<token>_<instant>.parquet`,
no bytes copied) and the files Delta removed become replaced file groups, in one Hudi
instant (`commit`, or `replacecommit` when something was removed) whose metadata records the
Delta version. `hoodie.properties` says `populate.meta.fields=false`, so base files need no
Hudi meta columns. The completed instant file is written last (temp file + rename): a crash
before it leaves an incomplete instant that readers ignore and the next run rewrites.
Partitioned tables (and deletion vectors, column mapping) are rewritten as one new base file
per version instead, and the publish record says so.

What a Spark + Hudi bundle jar would add (not reachable here: no Maven): real upserts and
deletes with record-level indexes, merge-on-read tables with log files, compaction,
clustering and the cleaner, Hudi's own metadata table, and a writer that fills the meta
fields (`_hoodie_commit_time`, ...) for incremental queries by record.

Never writes or deletes a Delta file; Hudi keeps its own hardlinks, so Delta's vacuum does
not take files from under it.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from include.lakehouse.config import is_remote
from include.lakehouse.errors import LakehouseError
from include.lakehouse.failpoints import reach
from include.lakehouse.formats import delta_source
from include.lakehouse.tables.registry import folder, table_uri

DELTA_VERSION = "lakehouse.delta.version"
TOKEN = "0-0-0"
_NAMESPACE = uuid.UUID("6f1c1f4e-4d0a-4f43-9d0c-5b1f3d5e9a11")


def table_path(name: str) -> Path:
    """`gold/fct_orders` -> `<lakehouse>/hudi/gold/fct_orders` (local lakehouses only)."""
    base = folder("hudi")
    if is_remote(base):
        raise LakehouseError(f"LAKEHOUSE_ROOT is remote ({base}): Hudi translation hardlinks files and needs a "
                             "local lakehouse (a Spark + Hudi writer would write to object stores)")
    if "/" in name and not os.path.isabs(name):
        return Path(base) / name
    return Path(base) / "tables" / os.path.basename(name.rstrip("/"))


def _timeline(path: Path) -> Path:
    return path / ".hoodie"


def file_id(delta_file: str) -> str:
    """A stable Hudi file group id for a Delta data file (same file, same group, every run)."""
    return f"{uuid.uuid5(_NAMESPACE, os.path.basename(delta_file))}-0"


def instant_for(timestamp_ms: int, after: str | None) -> str:
    """Hudi instant time (yyyyMMddHHmmssSSS, UTC) from the Delta commit time, strictly after `after`."""
    stamp = datetime.fromtimestamp(timestamp_ms / 1000, tz=timezone.utc).strftime("%Y%m%d%H%M%S%f")[:-3]
    if after is not None and stamp <= after:
        moved = datetime.strptime(after, "%Y%m%d%H%M%S%f").replace(tzinfo=timezone.utc).timestamp() + 0.001
        stamp = datetime.fromtimestamp(moved, tz=timezone.utc).strftime("%Y%m%d%H%M%S%f")[:-3]
    return stamp


def completed_instants(path: Path) -> list[tuple[str, str, dict]]:
    """(instant, action, metadata) of every completed instant, oldest first."""
    timeline = _timeline(path)
    if not timeline.exists():
        return []
    done = []
    for entry in timeline.iterdir():
        stem, _, action = entry.name.partition(".")
        if action in ("commit", "replacecommit") and stem.isdigit():
            done.append((stem, action, json.loads(entry.read_text() or "{}")))
    return sorted(done)


UNCHANGED_MARKER = ".lakehouse_unchanged_through"


def published_version(path: Path) -> int | None:
    """The Delta version the Hudi table stands for: its newest instant's, or later when the
    Delta versions after it changed no file (vacuum, metadata): hudi-rs resolves the schema from
    the newest instant's write stats, so those get a marker file instead of an empty instant."""
    instants = completed_instants(path)
    newest = int(instants[-1][2]["extraMetadata"][DELTA_VERSION]) if instants else None
    marker = _timeline(path) / UNCHANGED_MARKER
    if marker.exists():
        unchanged = int(marker.read_text())
        newest = unchanged if newest is None else max(newest, unchanged)
    return newest


def instant_for_version(path: Path, version: int) -> str:
    """The instant standing for Delta `version`: the newest translated at or before it."""
    best = [i for i, _, meta in completed_instants(path) if int(meta["extraMetadata"][DELTA_VERSION]) <= version]
    if not best:
        raise LakehouseError(f"Hudi table {path}: no instant for Delta version {version}")
    return best[-1]


def _live_file_groups(path: Path) -> dict[str, str]:
    """file group id -> Delta file it stands for, as of the last completed instant."""
    groups: dict[str, str] = {}
    for _, _, meta in completed_instants(path):
        for fid in meta.get("partitionToReplaceFileIds", {}).get("", []):
            groups.pop(fid, None)
        for stat in meta.get("partitionToWriteStats", {}).get("", []):
            groups[stat["fileId"]] = stat.get("lakehouseDeltaFile", "")
    return groups


def _write_properties(path: Path, name: str, keys: list[str]) -> None:
    props = path / ".hoodie" / "hoodie.properties"
    if props.exists():
        return
    props.parent.mkdir(parents=True, exist_ok=True)
    lines = {
        "hoodie.table.name": name.replace("/", "_").replace(".", "_"),
        "hoodie.table.type": "COPY_ON_WRITE",
        "hoodie.table.version": "6",
        "hoodie.timeline.layout.version": "1",
        "hoodie.table.base.file.format": "PARQUET",
        "hoodie.populate.meta.fields": "false",  # base files are Delta's: no _hoodie_* columns
        "hoodie.table.keygenerator.class": "org.apache.hudi.keygen.NonpartitionedKeyGenerator",
        "hoodie.timeline.timezone": "UTC",
    }
    if keys:
        lines["hoodie.table.recordkey.fields"] = ",".join(keys)
    tmp = props.with_suffix(".tmp")
    tmp.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
    os.replace(tmp, props)


def _link(source: str, target: Path) -> str:
    """Hardlink (no bytes copied); a copy only where a link cannot be made (other filesystem)."""
    if target.exists():
        return "hardlink"
    try:
        os.link(source, target)
        return "hardlink"
    except OSError:
        tmp = target.with_suffix(".copying")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
        return "copy"


def translate(name: str, uri: str, *, keys: list[str] | None = None, upto: int | None = None) -> dict[str, Any]:
    """Bring the Hudi table up to Delta's current version (or `upto`): one completed instant per
    Delta version; a rerun with nothing new writes nothing."""
    path = table_path(name)
    last = published_version(path)
    written, mode, reason, gone = 0, "hardlink", None, []
    for snap in delta_source.pending_versions(uri, last, upto, gone):
        version = snap.version
        _write_properties(path, name, list(keys or ()))
        instants = completed_instants(path)
        instant = instant_for(snap.timestamp_ms, instants[-1][0] if instants else None)
        live = _live_file_groups(path)
        reason = snap.rewrite_reason
        stats, replaced = [], []
        if reason:  # rewrite: the version's rows as one new base file
            mode = "rewrite"
            fid = f"{uuid.uuid5(_NAMESPACE, f'{uri}@{version}')}-0"
            target = path / f"{fid}_{TOKEN}_{instant}.parquet"
            tmp = target.with_suffix(".writing")
            pq.write_table(delta_source.read_version(uri, version), tmp)
            os.replace(tmp, target)
            stats.append(_stat(fid, target, f"rewrite@{version}"))
            replaced = list(live)
        else:
            want = {file_id(f): f for f in snap.files}
            replaced = [fid for fid in live if fid not in want]
            mode = "hardlink" if mode == "rewrite" else mode
            for fid, source in sorted(want.items()):
                if fid in live:
                    continue
                target = path / f"{fid}_{TOKEN}_{instant}.parquet"
                if _link(source, target) == "copy":
                    mode = "copy"
                stats.append(_stat(fid, target, os.path.basename(source)))
        if not stats and not replaced:  # nothing changed in the files: no instant (see published_version)
            timeline = _timeline(path)
            tmp = timeline / f".{UNCHANGED_MARKER}.tmp"
            tmp.write_text(str(version))
            os.replace(tmp, timeline / UNCHANGED_MARKER)
            continue
        action = "replacecommit" if replaced else "commit"
        metadata = {
            "partitionToWriteStats": {"": stats} if stats else {},
            "compacted": False,
            "operationType": "INSERT_OVERWRITE" if replaced else "INSERT",
            "extraMetadata": {DELTA_VERSION: str(version), "lakehouse.delta.table": uri},
        }
        if replaced:
            metadata["partitionToReplaceFileIds"] = {"": replaced}
        timeline = _timeline(path)
        (timeline / f"{instant}.{action}.requested").write_text("")
        (timeline / f"{instant}.{action}.inflight").write_text("")
        reach("formats.hudi.before_complete")
        tmp = timeline / f".{instant}.{action}.tmp"
        tmp.write_text(json.dumps(metadata))
        os.replace(tmp, timeline / f"{instant}.{action}")  # the instant completes here, atomically
        written += 1
    return {"format": "hudi", "from_version": last, "to_version": published_version(path),
            "snapshots_written": written, "mode": mode, "reason": reason, "versions_vacuumed_before_publish": gone,
            "path": str(path)}


def _stat(fid: str, target: Path, delta_file: str) -> dict[str, Any]:
    return {"fileId": fid, "path": target.name, "partitionPath": "", "numWrites": 0,
            "totalWriteBytes": target.stat().st_size, "lakehouseDeltaFile": delta_file}


def read(name: str, version: int | None = None, *, filters: list[tuple[str, str, str]] | None = None,
         columns: list[str] | None = None) -> pa.Table:
    """Rows of the Hudi table now or at the instant standing for Delta `version` (hudi-rs)."""
    from hudi import HudiReadOptions, HudiTable

    path = table_path(name)
    if published_version(path) is None:
        raise LakehouseError(f"{name}: no Hudi table yet; run publish_formats first")
    if not completed_instants(path) or (version is not None and not _has_instant_at(path, version)):
        return _empty(name, version)  # no file written yet at that version
    table = HudiTable(str(path))
    options = HudiReadOptions()
    if version is not None:
        options = options.with_as_of_timestamp(instant_for_version(path, version))
    if filters:
        options = options.with_filters(filters)
    if columns:
        options = options.with_projection(columns)
    batches = table.read(options)
    schema = delta_source.plain_schema(table.get_schema())
    if columns:
        schema = pa.schema([schema.field(c) for c in columns])
    return pa.Table.from_batches([b.cast(schema) for b in batches if b.num_rows], schema=schema)


def _has_instant_at(path: Path, version: int) -> bool:
    return any(int(meta["extraMetadata"][DELTA_VERSION]) <= version for _, _, meta in completed_instants(path))


def _empty(name: str, version: int | None) -> pa.Table:
    from deltalake import DeltaTable

    from include.lakehouse.config import storage_options

    uri = table_uri(name)
    schema = delta_source.plain_schema(pa.schema(DeltaTable(uri, version=version, storage_options=storage_options())
                                                 .schema().to_arrow()))
    return schema.empty_table()


def files_for(name: str, version: int | None = None, filters: list[tuple[str, str, str]] | None = None) -> int:
    """How many base files a read opens after hudi-rs prunes by file statistics."""
    from hudi import HudiReadOptions, HudiTable

    path = table_path(name)
    options = HudiReadOptions()
    if version is not None:
        options = options.with_as_of_timestamp(instant_for_version(path, version))
    if filters:
        options = options.with_filters(filters)
    return len(HudiTable(str(path)).get_file_slices(options))
