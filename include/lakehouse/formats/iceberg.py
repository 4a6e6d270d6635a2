"""Iceberg copies of lakehouse Delta tables, kept in step with the Delta log without copying data.

Owns the Iceberg catalog (a SQL catalog on SQLite under `<lakehouse>/warehouse/` by default;
REST, Glue, Unity or any pyiceberg catalog by LAKEHOUSE_ICEBERG_CATALOG, a JSON object of
catalog properties) and the translation of Delta versions into Iceberg snapshots: one
snapshot per Delta version that changed the files, adding the Delta version's new parquet
files (add_files: zero copy) and deleting the ones Delta removed, in one atomic catalog
commit that also records the Delta version (snapshot property `lakehouse.delta.version`).
That property is the translation state: it commits with the snapshot, so a crash mid-way
leaves the previous snapshot, whose files the vacuum guard keeps (see `referenced_files`).
Tables whose parquet files cannot be shared (partitioned, deletion vectors, column
mapping) are rewritten into the warehouse instead, and the publish record says so.

Never writes or deletes a Delta file, and never deletes data files: expiring snapshots only
drops metadata (the Delta files belong to Delta's vacuum).
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pyarrow as pa

from include.lakehouse.config import is_remote
from include.lakehouse.errors import LakehouseError
from include.lakehouse.failpoints import reach
from include.lakehouse.formats import delta_source
from include.lakehouse.tables.registry import folder

DELTA_VERSION = "lakehouse.delta.version"
NAME_MAPPING = "schema.name-mapping.default"


def catalog_properties() -> dict[str, str]:
    """LAKEHOUSE_ICEBERG_CATALOG (JSON), else a SQL catalog on SQLite in `<lakehouse>/warehouse/`."""
    raw = os.environ.get("LAKEHOUSE_ICEBERG_CATALOG")
    if raw:
        return {str(k): str(v) for k, v in json.loads(raw).items()}
    warehouse = folder("warehouse")
    if is_remote(warehouse):
        raise LakehouseError(f"LAKEHOUSE_ROOT is remote ({warehouse}): set LAKEHOUSE_ICEBERG_CATALOG to a catalog "
                             "(e.g. {\"type\": \"rest\", \"uri\": ...} or {\"type\": \"glue\"})")
    os.makedirs(warehouse, exist_ok=True)
    return {"type": "sql", "uri": f"sqlite:///{warehouse}/catalog.db", "warehouse": f"file://{warehouse}"}


def catalog():
    from pyiceberg.catalog import load_catalog

    return load_catalog("lakehouse", **catalog_properties())


def identifier(name: str) -> tuple[str, str]:
    """`gold/fct_orders` -> ("gold", "fct_orders"); other characters than [A-Za-z0-9_] become _."""
    layer, _, rest = name.partition("/")
    if not rest:  # a path: the folder name
        layer, rest = "tables", os.path.basename(name.rstrip("/"))
    return layer, re.sub(r"[^A-Za-z0-9_]", "_", rest)


def load(name: str):
    """The Iceberg table for a lakehouse table name, or None when it was never published."""
    from pyiceberg.exceptions import NoSuchTableError

    try:
        return catalog().load_table(identifier(name))
    except NoSuchTableError:
        return None


def published_version(table) -> int | None:
    """The Delta version the table's current snapshot stands for (None: nothing published)."""
    snapshot = table.current_snapshot() if table is not None else None
    if snapshot is None:
        return None
    value = snapshot.summary.additional_properties.get(DELTA_VERSION) if snapshot.summary else None
    return int(value) if value is not None else None


def snapshot_for_version(table, version: int):
    """The snapshot standing for Delta `version`: the newest translated at or before it."""
    best = None
    for snapshot in table.snapshots():
        value = (snapshot.summary.additional_properties if snapshot.summary else {}).get(DELTA_VERSION)
        if value is not None and int(value) <= version and (best is None or int(value) >= best[0]):
            best = (int(value), snapshot)
    if best is None:
        raise LakehouseError(f"Iceberg table {table.name()}: no snapshot for Delta version {version} "
                             "(not published yet, or expired with the Delta retention)")
    return best[1]


def _optional(schema: pa.Schema) -> pa.Schema:
    """Every column optional: Delta enforces NOT NULL on write, while its parquet files may
    mark a required column optional (merges of nullable data, Spark), which Iceberg refuses
    to add to a required field."""
    return pa.schema([f.with_nullable(True) for f in schema], metadata=schema.metadata)


def _create(name: str, schema: pa.Schema):
    schema = _optional(schema)
    cat = catalog()
    namespace, table_name = identifier(name)
    cat.create_namespace_if_not_exists(namespace)
    table = cat.create_table_if_not_exists((namespace, table_name), schema=schema)
    if NAME_MAPPING not in table.properties:  # Delta's parquet files carry no Iceberg field ids
        with table.transaction() as tx:
            tx.set_properties(**{NAME_MAPPING: table.metadata.schema().name_mapping.model_dump_json()})
        table = cat.load_table((namespace, table_name))
    return table


def _evolve_schema(tx, schema: pa.Schema) -> None:
    current = {f.name for f in tx.table_metadata.schema().fields}
    if {f.name for f in schema} - current:
        with tx.update_schema() as update:
            update.union_by_name(_optional(schema))
        tx.set_properties(**{NAME_MAPPING: tx.table_metadata.schema().name_mapping.model_dump_json()})


def translate(name: str, uri: str, *, upto: int | None = None) -> dict[str, Any]:
    """Bring the Iceberg table up to Delta's current version (or `upto`), one snapshot per
    Delta version that changed the files; a rerun with nothing new commits nothing."""
    from pyiceberg.io.pyarrow import parquet_file_to_data_file

    table = load(name)
    last = published_version(table)
    written, mode, reason, gone = 0, "zero_copy", None, []
    for snap in delta_source.pending_versions(uri, last, upto, gone):
        version = snap.version
        if table is None:
            table = _create(name, snap.schema)
        reason = snap.rewrite_reason
        mode = "rewrite" if reason else "zero_copy"
        have = {task.file.file_path: task.file for task in table.scan().plan_files()} \
            if table.current_snapshot() is not None else {}
        want = set(snap.files)
        properties = {DELTA_VERSION: str(version)}
        with table.transaction() as tx:
            _evolve_schema(tx, snap.schema)
            if reason:  # rewrite: the version's rows as new files in the warehouse
                tx.overwrite(delta_source.read_version(uri, version), snapshot_properties=properties)
            else:
                with tx.update_snapshot(snapshot_properties=properties).overwrite() as change:
                    for path, data_file in have.items():
                        if path not in want:
                            change.delete_data_file(data_file)
                    for path in sorted(want - set(have)):
                        change.append_data_file(parquet_file_to_data_file(table.io, tx.table_metadata, path))
            reach("formats.iceberg.before_commit")
        table = catalog().load_table(identifier(name))
        written += 1
    return {"format": "iceberg", "from_version": last, "to_version": published_version(table),
            "snapshots_written": written, "mode": mode, "reason": reason, "versions_vacuumed_before_publish": gone,
            "metadata_location": table.metadata_location if table is not None else None}


def expire(name: str, uri: str, retention_hours: float) -> int:
    """Expire the snapshots Delta's vacuum would no longer keep: those whose Delta version was
    superseded (the next translated version committed) longer ago than the table's vacuum
    retention, never the current one. Their files are then no longer pinned. Metadata only."""
    table = load(name)
    if table is None or table.current_snapshot() is None:
        return 0
    cutoff_ms = (datetime.now(timezone.utc) - timedelta(hours=retention_hours)).timestamp() * 1000
    stamps = delta_source.commit_timestamps(uri)
    by_version = sorted((int(s.summary.additional_properties[DELTA_VERSION]), s.snapshot_id) for s in table.snapshots()
                        if s.summary and DELTA_VERSION in s.summary.additional_properties)
    current = table.current_snapshot().snapshot_id
    old = [snapshot_id for (_, snapshot_id), (next_version, _) in zip(by_version, by_version[1:])
           if snapshot_id != current and stamps.get(next_version, 0) < cutoff_ms]  # log cleaned up: old
    if old:
        table.maintenance.expire_snapshots().by_ids(old).commit()
    return len(old)


def referenced_files(name: str) -> set[str]:
    """Every data file any live snapshot of the Iceberg table references (absolute paths)."""
    table = load(name)
    if table is None:
        return set()
    files: set[str] = set()
    for snapshot in table.snapshots():
        for task in table.scan(snapshot_id=snapshot.snapshot_id).plan_files():
            files.add(task.file.file_path.removeprefix("file://"))
    return files
