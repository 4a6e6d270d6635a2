"""Landing files into bronze, each file exactly once, bad rows to quarantine with the reason.

A file's load is one Delta commit on `bronze/<source>` carrying an app transaction keyed by
the file (name, size, mtime): a retry or rerun finds it and loads nothing, a changed file
with the same name is a new file. Rows that fail parsing, typing, required values or checks
go to `quarantine/<source>` (raw record + reason), committed first under the same key, so a
crash between the two commits is repaired by the rerun. The good rows of a file always load.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from include.lakehouse.config import SOURCES_FILE, lakehouse_root, load_sources
from include.lakehouse.delta import append, position, try_open
from include.lakehouse.errors import LakehouseError

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
QUARANTINE_SCHEMA = pa.schema([
    ("_raw", pa.string()), ("_reason", pa.string()), ("_source_file", pa.string()), ("_line", pa.int64()),
    ("_batch_id", pa.string()), ("_ingested_at", pa.timestamp("us", tz="UTC")),
])


@dataclass(frozen=True)
class FileContract:
    source: str
    columns: dict[str, pa.DataType]
    required: tuple[str, ...]
    checks: dict[str, str]


def _arrow_type(name: str) -> pa.DataType:
    if name.startswith("decimal("):
        precision, scale = name[len("decimal("):-1].split(",")
        return pa.decimal128(int(precision), int(scale))
    types = {"int64": pa.int64(), "int32": pa.int32(), "float64": pa.float64(), "string": pa.string(),
             "bool": pa.bool_(), "date32": pa.date32(), "timestamp": pa.timestamp("us", tz="UTC")}
    if name not in types:
        raise LakehouseError(f"sources.yaml: unknown column type '{name}'; use one of {sorted(types)} or decimal(p,s)")
    return types[name]


@lru_cache(maxsize=8)
def contract(source: str) -> FileContract:
    files = load_sources().get("files") or {}
    if source not in files:
        raise LakehouseError(f"unknown landing source '{source}': declare it under files: in {SOURCES_FILE} "
                             f"(known: {sorted(files)})")
    spec = files[source]
    return FileContract(source, {c: _arrow_type(t) for c, t in spec["columns"].items()},
                        tuple(spec.get("required") or ()), dict(spec.get("checks") or {}))


def landing_dir(source: str) -> Path:
    root = lakehouse_root()
    if "://" in root:
        raise LakehouseError("file ingest reads a local landing folder; LAKEHOUSE_ROOT is remote "
                             "(mount the landing zone or use an object-store sensor)")
    return Path(root) / "landing" / source


def file_key(source: str, path: Path) -> str:
    """Identity of one landing file: a new upload under the same name is a new file."""
    stat = path.stat()
    digest = hashlib.sha1(f"{path.name}|{stat.st_size}|{int(stat.st_mtime)}".encode()).hexdigest()[:16]
    return f"ingest_files.{source}.{path.name}.{digest}"


def new_files(source: str) -> list[Path]:
    """Landing files of `source` not loaded yet (checked against bronze's app transactions)."""
    contract(source)  # an unknown source is named before a missing folder is
    folder = landing_dir(source)
    if not folder.is_dir():
        raise LakehouseError(f"landing folder {folder} for source '{source}' does not exist; create it or fix the source name")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in FORMATS)
    bronze = try_open(f"{lakehouse_root()}/bronze/{source}")
    if bronze is None:
        return files
    return [p for p in files if position(bronze, file_key(source, p)) is None]


def _read_records(path: Path) -> tuple[list[dict[str, Any]], list[str], list[tuple[int, str, str]]]:
    """Rows as dicts (JSON-ish values), their raw text, and rows that failed to parse."""
    fmt = FORMATS[path.suffix]
    records, raws, broken = [], [], []
    if fmt == "parquet":
        import pyarrow.parquet as pq

        for row in pq.read_table(path).to_pylist():
            records.append(row)
            raws.append(json.dumps(row, default=str))
    elif fmt == "csv":
        reader = csv.DictReader(io.StringIO(path.read_text()))
        for row in reader:
            if None in row:  # more fields than the header
                broken.append((reader.line_num, json.dumps(row, default=str), "more fields than the header"))
                continue
            records.append({k: (v if v != "" else None) for k, v in row.items()})
            raws.append(json.dumps(row))
    else:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                broken.append((number, line, f"unparseable JSON: {exc}"))
                continue
            records.append(row)
            raws.append(line)
    return records, raws, broken


def _cast_column(values: list[Any], target: pa.DataType) -> tuple[pa.Array, dict[int, str]]:
    """Cast one column; returns the array and {row: reason} for values that would not cast."""
    strings = pa.array([None if v is None else (v if isinstance(v, str) else str(v)) for v in values], pa.string())
    try:
        return pc.cast(strings, target), {}
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    out, errors = [], {}
    for i, value in enumerate(strings.to_pylist()):
        try:
            out.append(pc.cast(pa.array([value], pa.string()), target)[0].as_py())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            out.append(None)
            errors[i] = f"'{value}' is not a valid {target}"
    return pa.array(out, target), errors


def parse_file(source: str, path: Path) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    """Typed good rows, and (line, raw, reason) for every bad row of the file."""
    spec = contract(source)
    records, raws, bad = _read_records(path)
    reasons: dict[int, list[str]] = {}
    columns: dict[str, pa.Array] = {}
    names = list(spec.columns) + sorted({k for r in records for k in r} - set(spec.columns))
    for name in names:
        values = [r.get(name) for r in records]
        target = spec.columns.get(name, pa.string())  # unknown columns: kept as strings
        array, errors = _cast_column(values, target)
        columns[name] = array
        for i, reason in errors.items():
            reasons.setdefault(i, []).append(f"{name}: {reason}")
    for name in spec.required:
        for i in pc.indices_nonzero(pc.is_null(columns[name])).to_pylist():
            if not any(r.startswith(f"{name}:") for r in reasons.get(i, [])):
                reasons.setdefault(i, []).append(f"{name}: required value missing")
    for name, check in spec.checks.items():
        if check == "non_negative":
            for i in pc.indices_nonzero(pc.fill_null(pc.less(columns[name], 0), False)).to_pylist():
                reasons.setdefault(i, []).append(f"{name}: must not be negative")
    table = pa.table(columns) if records else pa.table({n: pa.array([], spec.columns.get(n, pa.string())) for n in names})
    keep = pa.array([i not in reasons for i in range(len(records))], pa.bool_())
    offset = 2 if FORMATS[path.suffix] == "csv" else 1  # csv: header is line 1
    bad += [(i + offset, raws[i], "; ".join(reasons[i])) for i in sorted(reasons)]
    return table.filter(keep), bad


def ingest_file(source: str, path: Path, *, batch_id: str | None = None) -> dict[str, Any]:
    """Load one landing file exactly once; returns rows loaded and quarantined."""
    key = file_key(source, path)
    batch_id = batch_id or uuid.uuid4().hex
    now = datetime.now(timezone.utc)
    good, bad = parse_file(source, path)
    if bad:
        quarantine = pa.table({
            "_raw": [b[1] for b in bad], "_reason": [b[2] for b in bad], "_source_file": [path.name] * len(bad),
            "_line": pa.array([b[0] for b in bad], pa.int64()), "_batch_id": [batch_id] * len(bad),
            "_ingested_at": pa.array([now] * len(bad), pa.timestamp("us", tz="UTC")),
        }, schema=QUARANTINE_SCHEMA)
        append(f"{lakehouse_root()}/quarantine/{source}", quarantine, app_id=key)
    metadata = pa.table({
        "_ingested_at": pa.array([now] * good.num_rows, pa.timestamp("us", tz="UTC")),
        "_source_file": pa.array([path.name] * good.num_rows, pa.string()),
        "_batch_id": pa.array([batch_id] * good.num_rows, pa.string()),
    })
    rows = pa.Table.from_arrays(good.columns + metadata.columns, names=good.column_names + metadata.column_names)
    result = append(f"{lakehouse_root()}/bronze/{source}", rows, app_id=key,
                    metadata={"source_file": path.name, "batch_id": batch_id})
    return {"file": path.name, "rows_inserted": result.rows_inserted, "rows_quarantined": 0 if result.skipped else len(bad),
            "rows_skipped": result.rows_skipped, "version": result.version, "already_loaded": result.skipped}


def ingest_new_files(source: str, *, batch_id: str | None = None) -> list[dict[str, Any]]:
    batch_id = batch_id or uuid.uuid4().hex
    return [ingest_file(source, p, batch_id=batch_id) for p in new_files(source)]


__all__ = ["contract", "new_files", "parse_file", "ingest_file", "ingest_new_files", "landing_dir"]
