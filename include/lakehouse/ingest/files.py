"""Landing files into bronze: each file's content exactly once, settled files only, bad rows and
bad files to quarantine with the reason; a bad file never blocks the good ones.

Identity is content: a file's app id is `ingest_files.<source>.<format>.<sha256 of its bytes>`,
committed in the same Delta commit as its rows on `bronze/<source>` (the name goes to
`_source_file` and the commit metadata). The same bytes under a second name, or uploaded again,
load nothing; a corrected re-upload (same name, size and mtime, other bytes) is new content and
loads. The format (from the suffix) is part of the id, so bytes quarantined as `x.txt` load when
renamed `x.csv`. Files loaded before content identity (app id from name|size|mtime) stay loaded.
Quarantine rows for the file commit first under the same app id on `quarantine/<source>`, so a
crash between the two commits is repaired by the rerun, and any number of concurrent runs write
each row once (delta.append checks and commits on one snapshot).

Settle rule: a file whose name marks it in progress (leading `.` or `_`, or ending in `.tmp`,
`.temp`, `.part`, `.partial`, `.inprogress`, `.filepart`, `.crdownload`, `_COPYING_`, any case)
is never read; any other file is read only once its mtime is at least `settle_seconds` old (per
source in sources.yaml, default 30 s; a future mtime waits too). Such files are reported as
waiting and taken by a later run. A writer that publishes by renaming a finished temp file into
place (the shop does) makes every visible file complete, so its source may set 0.

Bad input: a row that fails parsing, typing, a required value or a check is one quarantine
record (raw record + reason, `_rows` 1); the good rows of its file load. A file that cannot be
read as a whole (truncated Parquet or gzip, CSV that is not UTF-8, a header naming none of the
contract's required columns, an empty file, an unsupported suffix) is ONE quarantine record
(`_line` null): `_raw` points to a copy of its bytes under `quarantine/_files/<source>/<sha256>/`,
`_rows` holds its row count when it could still be counted (a wrong header: its data rows; an
empty file: 0) and is null when it could not (count such a file as one). It is marked handled
all the same. For every file: rows in = rows into bronze + quarantined rows (`_rows`, null
counting one). Bronze's schema evolves (new nullable string columns) only from files with good
rows; CSV and JSON lines are read BOM-tolerantly, JSON lines line by line (a line that is not
UTF-8 is one bad row).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
import os
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from include.lakehouse.config import SOURCES_FILE, load_sources
from include.lakehouse.errors import LakehouseError
from include.lakehouse.tables.delta import append, position, try_open
from include.lakehouse.tables.registry import folder as registry_folder, landing_dir, table_ref

log = logging.getLogger(__name__)

SUFFIX_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
IN_PROGRESS_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".inprogress", ".filepart", ".crdownload", "_copying_")
DEFAULT_SETTLE_SECONDS = 30.0
QUARANTINE_SCHEMA = pa.schema([
    ("_raw", pa.string()), ("_reason", pa.string()), ("_source_file", pa.string()), ("_line", pa.int64()),
    ("_rows", pa.int64()), ("_content_sha256", pa.string()),
    ("_batch_id", pa.string()), ("_ingested_at", pa.timestamp("us", tz="UTC")),
])


@dataclass(frozen=True)
class FileContract:
    source: str
    columns: dict[str, pa.DataType]
    required: tuple[str, ...]
    checks: dict[str, str]
    formats: tuple[str, ...] = ("csv", "jsonl", "parquet")
    settle_seconds: float = DEFAULT_SETTLE_SECONDS


@dataclass
class LandingScan:
    """A landing folder at one moment: files to read now, and files left for a later run."""
    ready: list[Path] = field(default_factory=list)
    settling: list[tuple[Path, str]] = field(default_factory=list)  # time alone makes them ready
    in_progress: list[Path] = field(default_factory=list)  # named in progress: never read under this name

    @property
    def waiting(self) -> list[tuple[Path, str]]:
        """Every file not read now, with the reason."""
        named = [(p, "name marks it in progress (a leading . or _, or an in-progress suffix)") for p in self.in_progress]
        return sorted(self.settling + named)


class UnreadableFile(LakehouseError):
    """The file as a whole cannot be loaded; it goes to quarantine as one record."""

    def __init__(self, reason: str, rows: int | None = None):
        super().__init__(reason)
        self.reason, self.rows = reason, rows


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
    formats = tuple(spec.get("formats") or FileContract.formats)
    unknown = sorted(set(formats) - set(SUFFIX_FORMATS.values()))
    if unknown:
        raise LakehouseError(f"{SOURCES_FILE}: files.{source}.formats: unknown {unknown}; use csv, jsonl, parquet")
    settle = spec.get("settle_seconds", DEFAULT_SETTLE_SECONDS)
    if isinstance(settle, bool) or not isinstance(settle, (int, float)) or settle < 0:
        raise LakehouseError(f"{SOURCES_FILE}: files.{source}.settle_seconds must be a number >= 0, not {settle!r}")
    return FileContract(source, {c: _arrow_type(t) for c, t in spec["columns"].items()},
                        tuple(spec.get("required") or ()), dict(spec.get("checks") or {}), formats, float(settle))


def file_format(source: str, name: str) -> tuple[str, bool]:
    """How a file is read, by its suffix in any letter case: (csv | jsonl | parquet | unsupported,
    gzip-compressed?). A format the source does not declare in sources.yaml is unsupported."""
    lower = name.lower()
    compressed = lower.endswith(".gz")
    fmt = SUFFIX_FORMATS.get(os.path.splitext(lower[:-3] if compressed else lower)[1])
    return (fmt if fmt in contract(source).formats else "unsupported"), compressed


def file_app_id(source: str, name: str, sha256: str) -> str:
    """The app id recording that this content of `source` is handled (loaded or quarantined).
    The format is part of it: the same bytes renamed from `.txt` (quarantined as unsupported)
    to `.csv` are a new attempt; under any other name of the same format they are the same file."""
    return f"ingest_files.{source}.{file_format(source, name)[0]}.{sha256}"


def _legacy_app_id(source: str, path: Path) -> str:
    """The app id files loaded before content identity carry (name|size|mtime): a deployment that
    upgrades must not load those files again."""
    stat = path.stat()
    digest = hashlib.sha1(f"{path.name}|{stat.st_size}|{int(stat.st_mtime)}".encode()).hexdigest()[:16]
    return f"ingest_files.{source}.{path.name}.{digest}"


def _in_progress(name: str) -> bool:
    lower = name.lower()
    return name.startswith((".", "_")) or lower.endswith(IN_PROGRESS_SUFFIXES)


def scan_landing(source: str, *, settle_seconds: float | None = None, now: float | None = None) -> LandingScan:
    """Apply the settle rule to the landing folder of `source` (see the module docstring)."""
    spec = contract(source)  # an unknown source is named before a missing folder is
    folder = landing_dir(source)
    if not folder.is_dir():
        raise LakehouseError(f"landing folder {folder} for source '{source}' does not exist; create it or fix the source name")
    settle = spec.settle_seconds if settle_seconds is None else settle_seconds
    now = time.time() if now is None else now
    scan = LandingScan()
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        if _in_progress(path.name):
            scan.in_progress.append(path)
            continue
        try:
            age = now - path.stat().st_mtime
        except FileNotFoundError:  # renamed or removed since the listing: the next scan sees its new name
            continue
        if settle > 0 and age < settle:  # a future mtime (clock skew) waits too, unless settle is off
            scan.settling.append((path, f"modified {max(age, 0):.0f}s ago, under the settle time of {settle:g}s"))
        else:
            scan.ready.append(path)
    return scan


def _handled(bronze, source: str, path: Path, sha256: str) -> bool:
    """Whether bronze records this content as handled: the app id at version 1 or more, the
    version append writes and skips at (anything lower, e.g. a position a restore forgot, is not)."""
    if bronze is None:
        return False
    if (position(bronze, file_app_id(source, path.name, sha256)) or 0) >= 1:
        return True
    try:
        return (position(bronze, _legacy_app_id(source, path)) or 0) >= 1
    except FileNotFoundError:
        return False


def _unhandled(source: str, paths: list[Path]) -> list[Path]:
    bronze = try_open(table_ref(f"bronze/{source}"))
    seen, fresh = set(), []
    for path in paths:
        try:
            sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        except FileNotFoundError:
            continue
        key = file_app_id(source, path.name, sha256)
        if key not in seen and not _handled(bronze, source, path, sha256):
            fresh.append(path)
        seen.add(key)
    return fresh


def new_files(source: str, *, settle_seconds: float | None = None) -> list[Path]:
    """Settled landing files of `source` whose content is not handled yet (one name per content)."""
    return _unhandled(source, scan_landing(source, settle_seconds=settle_seconds).ready)


def pending_files(source: str, *, settle_seconds: float | None = None) -> dict[str, list[str]]:
    """What a sensor waits on: settled files with new content, and files that only need time to settle."""
    scan = scan_landing(source, settle_seconds=settle_seconds)
    return {"new": [p.name for p in _unhandled(source, scan.ready)], "settling": [p.name for p, _ in scan.settling]}


def _format_and_payload(source: str, name: str, content: bytes) -> tuple[str, bytes]:
    """The file's format and its bytes with gzip undone."""
    fmt, compressed = file_format(source, name)
    if fmt == "unsupported":
        lower = name.lower()
        suffix = os.path.splitext(lower[:-3] if compressed else lower)[1] or "(no suffix)"
        takes = ", ".join(s for s, f in SUFFIX_FORMATS.items() if f in contract(source).formats)
        raise UnreadableFile(f"unsupported file type '{suffix}': source '{source}' takes {takes} files, "
                             "optionally gzip-compressed (.gz)")
    if not content:
        raise UnreadableFile("empty file (0 bytes): no header, no rows", 0)
    if compressed:
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError, zlib.error) as exc:
            raise UnreadableFile(f"cannot decompress gzip: {exc}") from None
    return fmt, content


def _check_header(source: str, columns: list[str], rows: int) -> None:
    required = contract(source).required
    if required and not set(required) & set(columns):
        raise UnreadableFile(f"header does not match the contract: none of the required columns {list(required)} "
                             f"is among the file's columns {columns}", rows)


def _read_records(source: str, fmt: str, payload: bytes) -> tuple[list[dict[str, Any]], list[str], list[int],
                                                                 list[tuple[int, str, str]]]:
    """Rows as dicts (JSON-ish values), their raw text, their line (row number for Parquet), and
    (line, raw, reason) of rows that failed to parse. Raises UnreadableFile when the file cannot
    be read as a whole."""
    records, raws, lines, broken = [], [], [], []
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(io.BytesIO(payload))
        except (pa.ArrowException, OSError) as exc:
            raise UnreadableFile(f"cannot read Parquet: {exc}") from None
        _check_header(source, table.column_names, table.num_rows)
        for number, row in enumerate(table.to_pylist(), start=1):
            records.append(row)
            raws.append(json.dumps(row, default=str))
            lines.append(number)
    elif fmt == "csv":
        try:
            text = payload.decode("utf-8-sig")  # a BOM is not part of the first column's name
        except UnicodeDecodeError as exc:
            raise UnreadableFile(f"not valid UTF-8 text ({exc}); deliver CSV files as UTF-8") from None
        try:
            reader = csv.DictReader(io.StringIO(text, newline=""))
            rows = list(reader)
            _check_header(source, list(reader.fieldnames or []), len(rows))
        except csv.Error as exc:
            raise UnreadableFile(f"cannot parse CSV: {exc}") from None
        for number, row in enumerate(rows, start=2):  # the header is line 1 (record numbers, as before)
            if None in row:  # more fields than the header
                broken.append((number, json.dumps(row, default=str), "more fields than the header"))
            else:
                records.append({k: (v if v != "" else None) for k, v in row.items()})
                raws.append(json.dumps(row))
                lines.append(number)
    else:
        if payload.startswith(b"\xef\xbb\xbf"):
            payload = payload[3:]
        for number, raw_line in enumerate(payload.split(b"\n"), start=1):
            raw_line = raw_line.rstrip(b"\r")
            if not raw_line.strip():
                continue
            try:
                line = raw_line.decode("utf-8")
            except UnicodeDecodeError as exc:
                broken.append((number, raw_line.decode("utf-8", "backslashreplace"), f"not valid UTF-8: {exc}"))
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
            lines.append(number)
        if records:
            _check_header(source, sorted({k for r in records for k in r}), len(records) + len(broken))
    return records, raws, lines, broken


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


def contract_table(source: str) -> pa.Table:
    """An empty table with exactly the contract's columns: what a file without good rows commits."""
    return pa.table({n: pa.array([], t) for n, t in contract(source).columns.items()})


def parse_file(source: str, path: Path, content: bytes | None = None) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    """Typed good rows, and (line, raw, reason) for every bad row of the file.
    Raises UnreadableFile when the file cannot be read as a whole."""
    spec = contract(source)
    fmt, payload = _format_and_payload(source, path.name, path.read_bytes() if content is None else content)
    records, raws, lines, bad = _read_records(source, fmt, payload)
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
    keep = pa.array([i not in reasons for i in range(len(records))], pa.bool_())
    bad += [(lines[i], raws[i], "; ".join(reasons[i])) for i in sorted(reasons)]
    good = pa.table(columns).filter(keep) if records else contract_table(source)
    if good.num_rows == 0:  # never evolve bronze's schema from a file without one good row
        good = contract_table(source)
    return good, sorted(bad)


def _keep_bytes(source: str, name: str, sha256: str, content: bytes) -> str:
    """A copy of a quarantined file's bytes, addressed by content, written atomically; returns its path."""
    folder = Path(registry_folder("quarantine", "_files", source, sha256))
    target = folder / name
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{name}.{uuid.uuid4().hex}.tmp"
        partial.write_bytes(content)
        partial.replace(target)
    return str(target)


def ingest_file(source: str, path: Path, *, batch_id: str | None = None) -> dict[str, Any]:
    """Load one landing file's content exactly once; returns what happened and the row counts."""
    result = {"file": path.name, "rows_inserted": 0, "rows_quarantined": 0, "rows_skipped": 0, "version": None,
              "already_loaded": False}
    try:
        before = path.stat()
        content = path.read_bytes()
        after = path.stat()
    except FileNotFoundError:
        return {**result, "status": "waiting", "reason": "renamed or removed while being read"}
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or len(content) != after.st_size:
        return {**result, "status": "waiting", "reason": "changed while being read"}
    sha256 = hashlib.sha256(content).hexdigest()
    key = file_app_id(source, path.name, sha256)
    bronze_uri, quarantine_uri = table_ref(f"bronze/{source}"), table_ref(f"quarantine/{source}")
    result["content_sha256"] = sha256
    bronze = try_open(bronze_uri)
    if _handled(bronze, source, path, sha256):
        return {**result, "status": "already_loaded", "already_loaded": True, "version": bronze.version()}
    batch_id = batch_id or uuid.uuid4().hex
    now = datetime.now(timezone.utc)
    records: list[tuple[int | None, str, str, int | None]] = []  # (line, raw, reason, rows)
    whole_file = None
    try:
        good, bad = parse_file(source, path, content)
        records = [(line, raw, reason, 1) for line, raw, reason in bad]
    except UnreadableFile as problem:
        whole_file = problem.reason
        good = contract_table(source)
        records = [(None, _keep_bytes(source, path.name, sha256, content), problem.reason, problem.rows)]
        log.warning("%s: quarantined whole: %s", path.name, problem.reason)
    quarantined = 0
    if records:
        n = len(records)
        quarantine = pa.table({
            "_raw": [r[1] for r in records], "_reason": [r[2] for r in records], "_source_file": [path.name] * n,
            "_line": pa.array([r[0] for r in records], pa.int64()), "_rows": pa.array([r[3] for r in records], pa.int64()),
            "_content_sha256": [sha256] * n, "_batch_id": [batch_id] * n,
            "_ingested_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
        }, schema=QUARANTINE_SCHEMA)
        written = append(quarantine_uri, quarantine, app_id=key, metadata={"source_file": path.name})
        if not written.skipped:
            quarantined = sum(1 if r[3] is None else r[3] for r in records)
    metadata = pa.table({
        "_ingested_at": pa.array([now] * good.num_rows, pa.timestamp("us", tz="UTC")),
        "_source_file": pa.array([path.name] * good.num_rows, pa.string()),
        "_batch_id": pa.array([batch_id] * good.num_rows, pa.string()),
    })
    rows = pa.Table.from_arrays(good.columns + metadata.columns, names=good.column_names + metadata.column_names)
    loaded = append(bronze_uri, rows, app_id=key,
                    metadata={"source_file": path.name, "content_sha256": sha256, "batch_id": batch_id})
    # a concurrent run may have won one of the two commits: report what this run wrote
    wrote = not loaded.skipped or quarantined
    status = "already_loaded" if not wrote else ("quarantined" if whole_file else "loaded")
    return {**result, "status": status, "rows_inserted": loaded.rows_inserted, "rows_quarantined": quarantined,
            "rows_skipped": loaded.rows_skipped, "version": loaded.version, "already_loaded": loaded.skipped,
            **({"reason": whole_file} if whole_file else {})}


def ingest_new_files(source: str, *, batch_id: str | None = None, settle_seconds: float | None = None) -> list[dict[str, Any]]:
    """Load every settled landing file of `source` not handled yet; files still waiting
    (in-progress names, not settled) are reported with status `waiting` and the reason."""
    batch_id = batch_id or uuid.uuid4().hex
    scan = scan_landing(source, settle_seconds=settle_seconds)
    results = []
    for path in _unhandled(source, scan.ready):  # one bronze snapshot for the cheap check; ingest_file re-checks
        result = ingest_file(source, path, batch_id=batch_id)
        if result["status"] == "already_loaded":  # handled by an earlier or a concurrent run, maybe under another name
            log.info("%s: content already handled (sha256 %s)", path.name, result["content_sha256"])
        else:
            results.append(result)
    for path, why in scan.waiting:
        log.info("%s: waiting: %s", path.name, why)
        results.append({"file": path.name, "status": "waiting", "reason": why, "rows_inserted": 0,
                        "rows_quarantined": 0, "rows_skipped": 0, "version": None, "already_loaded": False})
    return results


__all__ = ["contract", "scan_landing", "new_files", "pending_files", "parse_file", "ingest_file", "ingest_new_files",
           "landing_dir", "file_app_id", "file_format", "LandingScan", "UnreadableFile"]
