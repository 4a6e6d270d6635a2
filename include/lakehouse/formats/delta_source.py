"""What a Delta version looks like to the other formats: its data files, its commit time and
whether its files can be shared as they are (zero copy) or must be rewritten.

Owns read-only views of Delta tables for the translators. Never writes a Delta table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import pyarrow as pa
from deltalake import DeltaTable

from include.lakehouse.config import is_remote, storage_options


@dataclass(frozen=True)
class DeltaVersion:
    """One version of a Delta table: absolute data file paths, commit time and schema."""

    uri: str
    version: int
    files: tuple[str, ...]          # absolute paths / URIs of the data files of this snapshot
    timestamp_ms: int
    schema: pa.Schema
    rewrite_reason: str | None      # why the files cannot be shared as they are (None: zero copy)


def rewrite_reason(dt: DeltaTable) -> str | None:
    """Why another format cannot point at this snapshot's parquet files as they are."""
    if dt.metadata().partition_columns:
        return (f"partitioned by {dt.metadata().partition_columns}: Delta keeps partition values in the log, "
                "not in the parquet files")
    protocol = dt.protocol()
    if "deletionVectors" in (protocol.reader_features or []):
        return "deletion vectors: rows deleted in the log are still in the parquet files"
    if dt.metadata().configuration.get("delta.columnMapping.mode", "none") != "none":
        return "column mapping: parquet column names differ from the table's"
    return None


def plain_schema(schema: pa.Schema) -> pa.Schema:
    """View types (string_view) made plain: Iceberg and Hudi readers expect string/binary."""
    plain = {pa.string_view(): pa.string(), pa.binary_view(): pa.binary()}
    return pa.schema([f.with_type(plain.get(f.type, f.type)) for f in schema], metadata=schema.metadata)


def commit_timestamps(uri: str) -> dict[int, int]:
    """Delta version -> commit timestamp (ms since epoch), from the log."""
    dt = DeltaTable(uri, storage_options=storage_options())
    return {int(c["version"]): int(c["timestamp"]) for c in dt.history() if "version" in c}


def versions_after(uri: str, last: int | None) -> list[int]:
    """Delta versions newer than `last` (all of them when None), oldest first."""
    current = DeltaTable(uri, storage_options=storage_options()).version()
    start = 0 if last is None else last + 1
    return list(range(start, current + 1))


def load_version(uri: str, version: int, timestamps: dict[int, int] | None = None) -> DeltaVersion:
    dt = DeltaTable(uri, version=version, storage_options=storage_options())
    files = tuple(_absolute(uri, f) for f in dt.file_uris())
    stamp = (timestamps or {}).get(version)
    if stamp is None:
        stamp = (timestamps or commit_timestamps(uri)).get(version, 0)
    return DeltaVersion(uri=uri, version=version, files=files, timestamp_ms=stamp,
                        schema=plain_schema(pa.schema(dt.schema().to_arrow())), rewrite_reason=rewrite_reason(dt))


def read_version(uri: str, version: int) -> pa.Table:
    """The rows of a version (for the rewrite fallback), partition columns included."""
    dt = DeltaTable(uri, version=version, storage_options=storage_options())
    table = dt.to_pyarrow_dataset().to_table()
    return table.cast(plain_schema(table.schema))


def files_exist(snapshot: DeltaVersion) -> bool:
    """False when Delta's vacuum already removed a file of this version (local tables; object
    stores are assumed complete: their readers report a missing object)."""
    return all(os.path.exists(f) for f in snapshot.files if "://" not in f)


def _absolute(uri: str, path: str) -> str:
    if "://" in path and not path.startswith("file://"):
        return path
    path = path.removeprefix("file://")
    return path if os.path.isabs(path) else os.path.join(uri, path)


def is_local(uri: str) -> bool:
    return not is_remote(uri)


def pending_versions(uri: str, last: int | None, upto: int | None, gone: list[int]) -> Iterator[DeltaVersion]:
    """The Delta versions a format has not published yet (after `last`, up to `upto`), oldest
    first. A version whose files were vacuumed before it was published is skipped and listed in
    `gone` (the next version stands for it); the newest is always yielded."""
    versions = [v for v in versions_after(uri, last) if upto is None or v <= upto]
    stamps = commit_timestamps(uri) if versions else {}
    for version in versions:
        snapshot = load_version(uri, version, stamps)
        if version != versions[-1] and not files_exist(snapshot):
            gone.append(version)
            continue
        yield snapshot
