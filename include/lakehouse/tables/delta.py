"""Writing Delta tables with delta-rs: the one implementation of create, append, partition
overwrite, full replace, merge (upsert and the planned merges of CDC and SCD2), the planned
rewrite of SCD2's key ranges (replace_where), delete and schema evolution that every DAG,
operator and Spark job uses.

Owns every Delta write: no module outside include/lakehouse/tables/ calls write_deltalake,
DeltaTable.create/merge/delete or alters table properties (tests/test_house_plan.py checks;
maintenance/operations.py owns optimize, vacuum, checkpoint and restore). Tables are named by
their registry name (`silver/customers`) or given as a path/URI; a new table takes its
registered configuration. Every write is one Delta commit, so a failure mid-write leaves the
table at its previous version. Never deletes data unless the caller asked for it, never builds
a table path itself (tables.registry resolves names).
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from typing import Any, Callable, Iterable, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Transaction, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from include.lakehouse.config import storage_options
from include.lakehouse.errors import ConcurrentWriteError, KeyColumnError, LakehouseError, SchemaEvolutionError
from include.lakehouse.observability.touched import note as note_lineage
from include.lakehouse.results import OperationResult
from include.lakehouse.tables.registry import TableSpec, resolve

# Incoming Delta type -> table Delta type pairs that are safe to cast on write.
_SAFE_WIDENING = {
    ("byte", "short"), ("byte", "integer"), ("byte", "long"), ("short", "integer"),
    ("short", "long"), ("integer", "long"), ("float", "double"), ("integer", "double"),
    ("timestamp_ntz", "timestamp"),  # naive times are taken as UTC
}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
log = logging.getLogger(__name__)
T = TypeVar("T")


def is_commit_conflict(exc: BaseException) -> bool:
    """A concurrent writer won the commit race (the caller must re-plan from a new snapshot)."""
    if isinstance(exc, (CommitFailedError, ConcurrentWriteError)):
        return True
    text = str(exc)
    return isinstance(exc, DeltaError) and ("already exists" in text or "Concurrent" in text)


def with_commit_retries(action: Callable[[], T], *, what: str, attempts: int = 6, first_delay: float = 0.1) -> T:
    """Run one planned table write, and re-plan it when a concurrent writer won the commit race.

    `action` must read the table afresh on every call (open, decide, commit against that
    snapshot), so a retry sees the winner's commit: an app transaction the winner recorded
    turns the retry into a no-op, a merge is recomputed against the new rows, a rewrite
    keeps what others appended. Backoff is exponential with jitter, so racing writers part.
    """
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except (CommitFailedError, DeltaError, ConcurrentWriteError) as exc:
            if not is_commit_conflict(exc):
                raise
            if attempt == attempts:
                raise LakehouseError(f"{what}: still conflicting with concurrent writers after {attempts} tries: {exc}") from exc
            log.warning("%s: commit conflict (%s), re-planning (try %d) in %.2fs", what, exc, attempt + 1, delay)
            time.sleep(delay * (0.5 + random.random()))
            delay *= 2
    raise AssertionError("unreachable")  # pragma: no cover


def to_arrow(data: Any) -> pa.Table:
    """Accept a pyarrow Table/RecordBatchReader, a pandas DataFrame or a list of dicts."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    if isinstance(data, list):
        return pa.Table.from_pylist(data)
    if hasattr(data, "toArrow"):  # a Spark DataFrame (collected to the driver)
        return data.toArrow()
    try:
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            return pa.Table.from_pandas(data, preserve_index=False)
    except ImportError:  # pragma: no cover - pandas is always installed with the stack
        pass
    return pa.table(data)


def quote(column: str) -> str:
    """Quote a column name for a delta-rs SQL predicate when it is not a plain identifier."""
    return column if _IDENTIFIER.match(column) else '"' + column.replace('"', '""') + '"'


def open_table(table: "str | TableSpec", version: int | None = None) -> DeltaTable:
    """Open an existing table (optionally at a version); a clear error when it does not exist."""
    uri, spec = resolve(table)
    note_lineage("in", uri, spec.name if spec else None)
    try:
        return DeltaTable(uri, version=version, storage_options=storage_options())
    except TableNotFoundError:
        raise LakehouseError(
            f"table {uri} does not exist yet: run the DAG that writes it first"
        ) from None


def exists(table: "str | TableSpec") -> bool:
    """Whether a table (registry name, spec or path/URI) has been created (no lineage: nothing is read)."""
    uri, _ = resolve(table)
    return DeltaTable.is_deltatable(uri, storage_options=storage_options())


def try_open(table: "str | TableSpec") -> DeltaTable | None:
    """Open a table (registry name, spec or path/URI) at its current version; None when it does not exist yet."""
    uri, spec = resolve(table)
    note_lineage("in", uri, spec.name if spec else None)
    if not exists(uri):
        return None
    return DeltaTable(uri, storage_options=storage_options())


def add_actions(dt: DeltaTable, *, flatten: bool = False) -> pa.Table:
    """The snapshot's add actions (one row per data file: path, size_bytes, num_records, stats)
    as a pyarrow Table. Read through the Arrow stream interface: `pa.table()` on delta-rs's
    arro3 table first asks whether it is a pandas DataFrame, which imports pandas (a third of a
    second in every task process that only wanted file counts)."""
    return pa.RecordBatchReader.from_stream(dt.get_add_actions(flatten=flatten)).read_all()


FORGOTTEN = -1  # an app transaction a restore rolled back to "never written" (Delta cannot delete one)


def position(dt: DeltaTable | None, app_id: str) -> int | None:
    """The version recorded for `app_id` (a stream position, a loaded file's mark), or None when
    it was never recorded or a restore forgot it (FORGOTTEN): read every position through this,
    never with `transaction_version` directly, or a restored table skips what came after."""
    if dt is None:
        return None
    version = dt.transaction_version(app_id)
    return None if version is None or version < 0 else version


def commit_log(dt: DeltaTable, after_version: int = -1, *, workers: int = 8) -> list[dict[str, Any]]:
    """What each commit of `dt` newer than `after_version` added, from its entry in the Delta log,
    newest first: version, timestamp (ms), operation, operation_metrics (commitInfo),
    rows_added_recorded (ROWS_ADDED, when the commit recorded it) and files_added / bytes_added,
    the add actions with dataChange=true (so OPTIMIZE, z-order and other
    rewrites that change no data add nothing). Read through the table's own storage (its URI
    and storage options: local or object store). Commits whose log entry is gone (log cleanup
    after a checkpoint) are not returned: the oldest returned version tells how far back it went.
    Costs one small read per commit asked for (`workers` at a time), so pass what was read before.
    """
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow.fs as pa_fs
    from deltalake.fs import DeltaStorageHandler

    fs = pa_fs.PyFileSystem(DeltaStorageHandler(dt.table_uri, storage_options()))

    def read(version: int) -> dict[str, Any] | None:
        try:
            with fs.open_input_stream(f"_delta_log/{version:020d}.json") as file:
                text = file.read().decode()
        except FileNotFoundError:
            return None
        info: dict[str, Any] = {}
        files = size = 0
        latest_add = None
        for line in text.splitlines():
            if not line.strip():
                continue
            action = json.loads(line)
            if "commitInfo" in action:
                info = action["commitInfo"] or {}
            elif "add" in action:
                add = action["add"]
                latest_add = max(latest_add or 0, int(add.get("modificationTime") or 0))
                if add.get("dataChange", True):
                    files += 1
                    size += int(add.get("size") or 0)
        timestamp = info.get("inCommitTimestamp") or info.get("timestamp") or latest_add
        recorded = info.get(ROWS_ADDED)
        return {"version": version, "timestamp": timestamp, "operation": info.get("operation"),
                "operation_metrics": info.get("operationMetrics") or {}, "files_added": files, "bytes_added": size,
                "rows_added_recorded": None if recorded is None else int(recorded)}

    commits: list[dict[str, Any]] = []
    newest = dt.version()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        # newest first, a batch at a time: log cleanup removes the oldest entries, so the first
        # missing one ends the walk
        for top in range(newest, after_version, -workers):
            batch = list(pool.map(read, range(top, max(top - workers, after_version), -1)))
            for commit in batch:
                if commit is None:
                    return commits
                commits.append(commit)
    return commits


def last_commit_metrics(dt: DeltaTable) -> dict[str, Any]:
    dt.update_incremental()
    history = dt.history(1)
    return (history[0].get("operationMetrics") or {}) if history else {}


def conform_schema(uri: str, dt: DeltaTable, data: pa.Table) -> tuple[pa.Table, bool]:
    """Fit incoming data to the table schema.

    Returns the (possibly cast) data and whether new columns must be merged into the
    schema. New columns are added as nullable; safe widenings (int -> long, naive -> UTC
    timestamps) are cast; anything else raises SchemaEvolutionError naming the column.
    """
    from deltalake import Schema

    table_fields = {f.name: f for f in dt.schema().fields}
    incoming = {f.name: f for f in Schema.from_arrow(data.schema).fields}
    table_arrow = pa.schema(dt.schema().to_arrow())
    new_columns = [name for name in incoming if name not in table_fields]
    for name, field in incoming.items():
        if name not in table_fields:
            continue
        want, got = str(table_fields[name].type), str(field.type)
        if want == got:
            continue
        pair = (getattr(field.type, "type", got), getattr(table_fields[name].type, "type", want))
        all_null = pa.types.is_null(data.schema.field(name).type)  # e.g. the payload of delete events
        if pair not in _SAFE_WIDENING and not all_null:
            raise SchemaEvolutionError(
                f"table {uri}: column '{name}' is {pair[1]} in the table but {pair[0]} in the new "
                f"data; cast it to {pair[1]} before writing, or write it under a new column name"
            )
        index = data.schema.get_field_index(name)
        data = data.set_column(index, name, data.column(name).cast(table_arrow.field(name).type))
    missing_required = [n for n, f in table_fields.items() if n not in incoming and not f.nullable]
    if missing_required:
        raise SchemaEvolutionError(
            f"table {uri}: the new data lacks required (non-null) columns {missing_required}; add them"
        )
    if new_columns:  # evolve as nullable: older rows have no value for them
        fields = [f.with_nullable(True) if f.name in new_columns else f for f in data.schema]
        data = data.cast(pa.schema(fields, metadata=data.schema.metadata))
    return data, bool(new_columns)


def _with_missing_columns(dt: DeltaTable, data: pa.Table) -> pa.Table:
    """Appended rows have no value for a (nullable) table column the data lacks, e.g. one an
    earlier batch added: null there (delta-rs refuses an append whose columns differ).
    Not for merges: there a missing column means "keep the target's value"."""
    table_arrow = pa.schema(dt.schema().to_arrow())
    for name in table_arrow.names:
        if name not in data.column_names:
            data = data.append_column(table_arrow.field(name), pa.nulls(data.num_rows, table_arrow.field(name).type))
    return data


def _result(uri: str, operation: str, started: float, dt: DeltaTable | None, **counts: Any) -> OperationResult:
    metrics = last_commit_metrics(dt) if dt is not None else {}
    return OperationResult(
        table=uri,
        operation=operation,
        version=dt.version() if dt is not None else None,
        files_added=int(metrics.get("num_added_files", metrics.get("num_target_files_added", 0)) or 0),
        files_removed=int(metrics.get("num_removed_files", metrics.get("num_target_files_removed", 0)) or 0),
        seconds=round(time.perf_counter() - started, 4),
        **counts,
    )


def append(
    table: "str | TableSpec",
    data: Any,
    *,
    app_id: str | None = None,
    app_version: int = 1,
    partition_by: Iterable[str] | None = None,
    metadata: dict[str, Any] | None = None,
    transactions: dict[str, int] | None = None,
    expected: dict[str, int | None] | None = None,
) -> OperationResult:
    """Append rows, exactly once per (app_id, app_version), for any number of concurrent writers.

    The pair is recorded in the same Delta commit as the data (a Delta app transaction),
    so a retried task finds it and writes nothing. Use one app_id per logical unit of
    work (e.g. `ingest_files.orders.<content hash>`) with app_version 1, or one app_id per
    stream with a growing batch number as app_version. `transactions` records more
    (app_id -> version) pairs in the same commit, e.g. the next offset of every Kafka
    partition whose messages the rows hold: data and positions commit together or not at all.

    Concurrency: the "already written?" check and the commit use one snapshot, so a writer
    that commits the same app id in between makes this commit fail (delta-rs conflict check)
    and the write is re-planned, finding the winner's app id: a no-op, never a duplicate.
    `expected` (app_id -> version the caller planned from, None for never) guards plans made
    outside this call (a Kafka read from stored offsets): when the snapshot no longer holds
    them, ConcurrentWriteError tells the caller to re-plan; nothing is written.
    """
    started = time.perf_counter()
    uri, spec = resolve(table)
    note_lineage("out", uri, spec.name if spec else None)
    data = to_arrow(data)
    parts = list(partition_by or (spec.partition_by if spec else ())) or None
    guarded = app_id is not None or bool(transactions) or expected is not None

    def plan_and_commit() -> OperationResult:
        dt = try_open(uri)
        if dt is None and guarded:  # create empty first: only a snapshot-based commit is conflict-checked
            ensure_table(uri, data.schema, spec, partition_by=parts)
            dt = try_open(uri)
        check_positions(uri, dt, expected)
        if app_id is not None and dt is not None:
            done = position(dt, app_id)
            if done is not None and done >= app_version:
                return OperationResult(
                    table=uri, operation="append", version=dt.version(), skipped=True,
                    rows_skipped=data.num_rows, seconds=round(time.perf_counter() - started, 4),
                    details={"app_id": app_id, "app_version": app_version},
                )
        rows, schema_mode = data, None
        if dt is not None:
            rows, evolve = conform_schema(uri, dt, data)
            schema_mode = "merge" if evolve else None
            rows = _with_missing_columns(dt, rows)
        commit = commit_properties({**({app_id: app_version} if app_id is not None else {}), **(transactions or {})},
                                   metadata)
        write_deltalake(
            dt if dt is not None else uri, rows, mode="append", schema_mode=schema_mode,
            partition_by=parts if dt is None else None,
            configuration=spec.configuration if (spec and dt is None) else None,
            storage_options=storage_options(), commit_properties=commit,
        )
        return _result(uri, "append", started, dt if dt is not None else try_open(uri), rows_inserted=rows.num_rows,
                       details={"app_id": app_id, "app_version": app_version} if app_id else {})

    if expected is not None:  # the caller's plan may be stale: it re-plans, not us
        return plan_and_commit()
    return with_commit_retries(plan_and_commit, what=f"append to {uri}")


def check_positions(uri: str, dt: DeltaTable | None, expected: dict[str, int | None] | None) -> None:
    """Refuse a write planned from positions (app_id -> version, None for never) that the
    snapshot `dt` no longer holds: ConcurrentWriteError tells the caller to re-plan. Check on
    the snapshot the write commits against, so nothing can move in between unnoticed."""
    if not expected:
        return
    have = {k: position(dt, k) if dt is not None else None for k in expected}
    moved = {k: (v, have[k]) for k, v in expected.items() if have[k] != v}
    if moved:
        raise ConcurrentWriteError(
            f"table {uri}: positions moved since this batch was planned "
            f"({', '.join(f'{k}: {a} -> {b}' for k, (a, b) in sorted(moved.items()))}); re-plan the batch")


def ensure_table(uri: str, schema: pa.Schema, spec: TableSpec | None = None, *,
                 partition_by: list[str] | None = None) -> None:
    """Create an empty table (registered configuration and partitioning) unless it exists.
    Concurrent creators race on version 0; the losers find the table and go on."""
    from deltalake import DeltaTable as _DeltaTable

    try:
        _DeltaTable.create(uri, schema=schema, mode="ignore", partition_by=partition_by or None,
                           configuration=spec.configuration if spec else None, storage_options=storage_options())
    except (CommitFailedError, DeltaError) as exc:
        if not is_commit_conflict(exc) and try_open(uri) is None:
            raise


_MERGE_CLAUSES = ("matched_delete", "matched_update", "matched_update_all", "not_matched_insert",
                  "not_matched_insert_all", "not_matched_by_source_delete", "not_matched_by_source_update")


def merge_clauses(dt: DeltaTable, source: pa.Table, *, on: str, clauses: list[tuple[str, dict[str, Any]]],
                  transactions: dict[str, int] | None = None, merge_schema: bool = False,
                  streamed: bool | None = None, small_dictionaries: bool = False) -> dict[str, Any]:
    """One Delta MERGE of `source` (alias `s`) into the snapshot `dt` (alias `t`) on `on`, with
    the given `when_<clause>` clauses in order (e.g. ("matched_delete", {"predicate": ...})),
    committing `transactions` with it. For callers that planned the rows themselves (CDC, SCD2):
    the conflict check runs against `dt`'s version. `small_dictionaries`: see
    `small_dictionary_properties`. Returns delta-rs's merge metrics."""
    options: dict[str, Any] = {"merge_schema": merge_schema}
    if streamed is not None:
        options["streamed_exec"] = streamed
    if small_dictionaries:
        options["writer_properties"] = small_dictionary_properties()
    merger = dt.merge(source, predicate=on, source_alias="s", target_alias="t",
                      commit_properties=commit_properties(transactions), **options)
    for clause, kwargs in clauses:
        if clause not in _MERGE_CLAUSES:
            raise ValueError(f"unknown merge clause '{clause}'; one of {', '.join(_MERGE_CLAUSES)}")
        merger = getattr(merger, f"when_{clause}")(**kwargs)
    return merger.execute()


def small_dictionary_properties() -> WriterProperties:
    """Parquet writer settings for rewrites of tables whose columns mostly never repeat a value
    (a dimension's surrogate keys, row hashes, natural keys): a column chunk gives up dictionary
    encoding after 256 KiB of distinct values instead of 1 MiB, which takes a third off a
    rewrite's time; a column with few distinct values keeps its dictionary (and the files
    come out no larger)."""
    return WriterProperties(compression="SNAPPY", dictionary_page_size_limit=256 * 1024)


ROWS_ADDED = "lakehouse.rows_added"  # commitInfo: the new rows of a commit whose metrics count rewritten ones too


def replace_where(dt: DeltaTable, data: pa.Table, *, predicate: str, transactions: dict[str, int] | None = None,
                  rows_added: int | None = None) -> dict[str, Any]:
    """Replace the rows of the snapshot `dt` matching the SQL `predicate` with `data`, in one
    commit with `transactions` (replaceWhere: the files holding matching rows are rewritten
    without them, `data` is added). For callers that planned the new rows themselves (SCD2):
    every row of `data` must match the predicate (delta-rs refuses the write otherwise), and
    the commit is conflict-checked against `dt`'s version (a concurrent commit that added rows
    matching the predicate or removed a file this one rewrites fails it). `rows_added` is
    recorded in the commit (ROWS_ADDED) as the rows the commit really adds: its `num_added_rows`
    also counts the matching rows written back unchanged. Written with
    `small_dictionary_properties`. Returns the commit's metrics."""
    write_deltalake(dt, data, mode="overwrite", predicate=predicate, writer_properties=small_dictionary_properties(),
                    commit_properties=commit_properties(
                        transactions, None if rows_added is None else {ROWS_ADDED: rows_added}))
    return last_commit_metrics(dt)


def commit_positions(dt: DeltaTable, transactions: dict[str, int]) -> None:
    """Commit only `transactions` (app id -> source version) on the snapshot `dt`: an empty
    append, so a batch that changed nothing still moves its position (conflict-checked
    against `dt`'s version). `dt` is brought up to the new version."""
    write_deltalake(dt, pa.schema(dt.schema().to_arrow()).empty_table(), mode="append",
                    storage_options=storage_options(), commit_properties=commit_properties(transactions))
    dt.update_incremental()


def enable_change_feed(dt: DeltaTable) -> None:
    """Switch on the change data feed of a table created without it (every later version has one)."""
    if dt.metadata().configuration.get("delta.enableChangeDataFeed") != "true":
        dt.alter.set_table_properties({"delta.enableChangeDataFeed": "true"})


def replace(table: "str | TableSpec", data: Any) -> OperationResult:
    """Replace a table's whole contents and schema with `data` in one commit (a full rebuild,
    such as a dbt mart); a new table takes its registered configuration."""
    started = time.perf_counter()
    uri, spec = resolve(table)
    note_lineage("out", uri, spec.name if spec else None)
    data = to_arrow(data)
    write_deltalake(uri, data, mode="overwrite", schema_mode="overwrite", storage_options=storage_options(),
                    configuration=spec.configuration if spec and try_open(uri) is None else None)
    return _result(uri, "replace", started, try_open(uri), rows_inserted=data.num_rows)


def delete_where(table: "str | TableSpec", predicate: str) -> OperationResult:
    """Delete the rows matching a SQL `predicate` in one commit."""
    started = time.perf_counter()
    uri, spec = resolve(table)
    note_lineage("out", uri, spec.name if spec else None)
    dt = open_table(uri)
    metrics = dt.delete(predicate)
    return _result(uri, "delete", started, dt, rows_deleted=metrics.get("num_deleted_rows", 0))


def commit_properties(transactions: dict[str, int] | None = None,
                      metadata: dict[str, Any] | None = None) -> CommitProperties | None:
    """Commit properties recording app transactions (app_id -> version) and custom metadata,
    so a write and the position it stands for commit together."""
    if not transactions and not metadata:
        return None
    return CommitProperties(
        custom_metadata={k: str(v) for k, v in (metadata or {}).items()} or None,
        app_transactions=[Transaction(k, v) for k, v in (transactions or {}).items()] or None,
    )


def partition_predicate(partition: dict[str, Any]) -> str:
    """`{"order_date": "2024-01-01"}` -> `order_date = '2024-01-01'` (values quoted as SQL literals)."""
    parts = []
    for column, value in partition.items():
        literal = str(value).replace("'", "''")
        parts.append(f"{quote(column)} = '{literal}'")
    return " AND ".join(parts)


def overwrite_partition(
    table: "str | TableSpec",
    data: Any,
    *,
    partition: dict[str, Any] | None = None,
    predicate: str | None = None,
    partition_by: Iterable[str] | None = None,
) -> OperationResult:
    """Replace the rows matching a partition/predicate with `data` in one commit (replaceWhere).

    Rerunning a logical date with the same data leaves the same rows. Every row of `data`
    must match the predicate, otherwise delta-rs refuses the write and nothing changes.
    """
    started = time.perf_counter()
    uri, spec = resolve(table)
    note_lineage("out", uri, spec.name if spec else None)
    if not (partition or predicate):
        raise LakehouseError(f"table {uri}: overwrite_partition needs a partition or a predicate")
    predicate = predicate or partition_predicate(partition or {})
    data = to_arrow(data)
    dt = try_open(uri)
    schema_mode = None
    if dt is not None:
        data, evolve = conform_schema(uri, dt, data)
        schema_mode = "merge" if evolve else None
        rows_before = _count_where(dt, partition) if partition else None
    else:
        rows_before = 0
    try:
        write_deltalake(
            uri, data, mode="overwrite", predicate=predicate if dt is not None else None,
            schema_mode=schema_mode,
            partition_by=list(partition_by or (spec.partition_by if spec else ())) or None,
            configuration=spec.configuration if (spec and dt is None) else None,
            storage_options=storage_options(),
        )
    except Exception as exc:  # delta-rs raises several types; keep the table name in the message
        if isinstance(exc, LakehouseError):
            raise
        raise LakehouseError(f"table {uri}: overwrite where {predicate} failed: {exc}") from exc
    return _result(uri, "overwrite_partition", started, dt or try_open(uri),
                   rows_inserted=data.num_rows, rows_deleted=rows_before or 0,
                   details={"predicate": predicate})


def _count_where(dt: DeltaTable, partition: dict[str, Any]) -> int:
    expression = None
    schema = dt.to_pyarrow_dataset().schema
    for column, value in partition.items():
        term = pc.field(column) == pa.scalar(value).cast(schema.field(column).type)
        expression = term if expression is None else expression & term
    return dt.to_pyarrow_dataset().count_rows(filter=expression)


def check_keys(uri: str, data: pa.Table, keys: Iterable[str], dt: DeltaTable | None = None) -> list[str]:
    """Validate merge keys: present in the data (and table), never null, unique in the data."""
    keys = list(keys)
    if not keys:
        raise KeyColumnError(f"table {uri}: no key columns given; set `keys` in tables.yaml or pass keys=")
    missing = [k for k in keys if k not in data.column_names]
    if dt is not None:
        missing += [k for k in keys if k not in {f.name for f in dt.schema().fields}]
    if missing:
        raise KeyColumnError(
            f"table {uri}: key column(s) {sorted(set(missing))} missing; the data has {data.column_names}"
        )
    for k in keys:
        if data.column(k).null_count:
            raise KeyColumnError(f"table {uri}: key column '{k}' has {data.column(k).null_count} null(s)")
    return keys


def duplicate_key_count(data: pa.Table, keys: list[str]) -> int:
    return data.num_rows - data.group_by(keys).aggregate([]).num_rows


def merge_upsert(
    table: "str | TableSpec",
    data: Any,
    *,
    keys: Iterable[str] | None = None,
    delete_when: str | None = None,
    update_when: str | None = None,
    app_id: str | None = None,
    app_version: int = 1,
) -> OperationResult:
    """Upsert `data` by key in one merge: update matched rows, insert new ones.

    With `app_id`, the merge is done once per (app_id, app_version), like `append`: the pair
    commits with the merge, and a merge whose pair (or a later version) is recorded is skipped
    (a stream's micro-batch replayed after a crash: app id = query, version = batch id).

    `delete_when` is a SQL predicate over the source (alias `s`), e.g. `s._deleted = true`:
    matched rows for which it holds are deleted, unmatched ones are not inserted.
    `update_when` restricts updates (e.g. `s.updated_at > t.updated_at`).
    """
    started = time.perf_counter()
    uri, spec = resolve(table)
    note_lineage("out", uri, spec.name if spec else None)
    data = to_arrow(data)
    keys = check_keys(uri, data, keys or (spec.keys if spec else ()), try_open(uri))
    duplicates = duplicate_key_count(data, keys)
    if duplicates:
        raise KeyColumnError(
            f"table {uri}: the merge source has {duplicates} duplicate key row(s) on {keys}; "
            "deduplicate it first (for change streams use apply_cdc, which keeps the newest)"
        )

    def plan_and_commit() -> OperationResult:
        dt = try_open(uri)
        if dt is None:
            rows = data
            if delete_when:  # nothing to delete yet: just do not insert rows marked for deletion
                rows = _filter_sql(data, f"NOT ({delete_when})")
            ensure_table(uri, rows.schema, spec, partition_by=list(spec.partition_by) if spec and spec.partition_by else None)
            dt = try_open(uri)
        done = position(dt, app_id) if app_id is not None else None
        if done is not None and done >= app_version:
            return OperationResult(table=uri, operation="merge", version=dt.version(), skipped=True,
                                   rows_skipped=data.num_rows, seconds=round(time.perf_counter() - started, 4),
                                   details={"app_id": app_id, "app_version": app_version})
        source, evolve = conform_schema(uri, dt, data)
        merger = dt.merge(
            source,
            predicate=" AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in keys),
            source_alias="s", target_alias="t", merge_schema=evolve,
            commit_properties=commit_properties({app_id: app_version}) if app_id is not None else None,
        )
        if delete_when:
            merger = merger.when_matched_delete(predicate=delete_when)
        merger = merger.when_matched_update_all(predicate=update_when)
        merger = merger.when_not_matched_insert_all(predicate=f"NOT ({delete_when})" if delete_when else None)
        metrics = merger.execute()
        changed = (metrics["num_target_rows_inserted"] + metrics["num_target_rows_updated"]
                   + metrics["num_target_rows_deleted"])
        return _result(
            uri, "merge", started, dt,
            rows_inserted=metrics["num_target_rows_inserted"],
            rows_updated=metrics["num_target_rows_updated"],
            rows_deleted=metrics["num_target_rows_deleted"],
            rows_skipped=data.num_rows - changed,
        )

    return with_commit_retries(plan_and_commit, what=f"merge into {uri}")


def _filter_sql(data: pa.Table, where: str) -> pa.Table:
    """Rows of `data` (aliased `s`, as in merge predicates) for which `where` holds."""
    import duckdb

    con = duckdb.connect()
    con.register("source_rows", data)
    # DuckDB hands UTC timestamps back as "Etc/UTC", which Delta refuses: keep the data's own types
    return con.execute(f"SELECT s.* FROM source_rows AS s WHERE {where}").fetch_arrow_table().cast(data.schema)
