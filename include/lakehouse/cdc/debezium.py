"""Debezium change events (PostgreSQL connector, JSON converter) as flat, typed rows.

Owns the reading of one message: the envelope (`before`, `after`, `op`, `source.lsn`,
`source.ts_ms`) or the unwrapped form of ExtractNewRecordState (`__op`, `__deleted`,
`__lsn`, `__source_ts_ms`), with or without the JsonConverter schema
(`{"schema": ..., "payload": ...}`), and undoing Debezium's value encodings: timestamps
(ZonedTimestamp ISO strings, Timestamp ms, MicroTimestamp, NanoTimestamp), Date (days),
Time/MicroTime/NanoTime (kept as "HH:MM:SS.ffffff" strings: Delta has no time type),
Decimal (precise: base64 two's-complement bytes with the scale from the schema or the
table config; string; double) and VariableScaleDecimal. A message's schema, when present,
decides how its fields are decoded; without one the `cdc:` entry in sources.yaml does
(`timestamps`, `dates`, `times`, `decimals`, `decimal_handling`), and a timestamp column
takes a number (micros, or the unit configured) or an ISO-8601 string.

Every problem is reported per message, as a ValueError whose text is the reason; nothing
here decides what happens to a bad message (the caller quarantines it) and one bad value
never fails its neighbours: `typed_changes` returns the good rows and the bad ones apart.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa

OPS = {"c", "r", "u", "d"}
META_TYPES = {"_op": pa.string(), "_lsn": pa.int64(), "_source_ts": pa.timestamp("us", tz="UTC")}
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
PER_SECOND = {"millis": 1_000, "micros": 1_000_000, "nanos": 1_000_000_000}
DECIMAL_MODES = ("precise", "string", "double")


@dataclass(frozen=True)
class Encoding:
    """How one column's JSON value encodes its SQL value, and the Arrow type it becomes."""

    kind: str  # timestamp, date, time, decimal, binary or a plain Arrow type name
    unit: str = "micros"  # timestamps and times: what a number counts since the epoch / midnight
    scale: int | None = None
    precision: int = 38
    mode: str = "precise"  # decimals: how a string is read (base64 bytes or digits)

    @property
    def arrow_type(self) -> pa.DataType:
        if self.kind == "timestamp":
            return pa.timestamp("us", tz="UTC")
        if self.kind == "date":
            return pa.date32()
        if self.kind == "time":
            return pa.string()  # Delta has no time type: ISO-8601 "HH:MM:SS.ffffff" sorts and reads as one
        if self.kind == "decimal":
            return pa.decimal128(min(self.precision, 38), self.scale if self.scale is not None else 0)
        if self.kind == "binary":
            return pa.binary()
        return _PLAIN[self.kind]


_PLAIN = {"int8": pa.int8(), "int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64(),
          "float32": pa.float32(), "float64": pa.float64(), "boolean": pa.bool_(), "string": pa.string()}
_NAMED = {
    "io.debezium.time.ZonedTimestamp": Encoding("timestamp"),
    "io.debezium.time.Timestamp": Encoding("timestamp", "millis"),
    "io.debezium.time.MicroTimestamp": Encoding("timestamp", "micros"),
    "io.debezium.time.NanoTimestamp": Encoding("timestamp", "nanos"),
    "org.apache.kafka.connect.data.Timestamp": Encoding("timestamp", "millis"),
    "io.debezium.time.Date": Encoding("date"),
    "org.apache.kafka.connect.data.Date": Encoding("date"),
    "io.debezium.time.Time": Encoding("time", "millis"),
    "io.debezium.time.MicroTime": Encoding("time", "micros"),
    "io.debezium.time.NanoTime": Encoding("time", "nanos"),
    "io.debezium.time.ZonedTime": Encoding("time"),
    "org.apache.kafka.connect.data.Time": Encoding("time", "millis"),
    "io.debezium.data.VariableScaleDecimal": Encoding("decimal", scale=None, mode="variable"),
}


def _configured(spec: dict[str, Any], key: str) -> dict[str, str]:
    """A column list (default unit) or a {column: unit} mapping from the cdc: config."""
    entry = spec.get(key) or ()
    return dict(entry) if isinstance(entry, dict) else {c: "micros" for c in entry}


def config_encodings(spec: dict[str, Any]) -> dict[str, Encoding]:
    """The encodings a table's cdc: entry declares (used when a message carries no schema)."""
    mode = spec.get("decimal_handling", "precise")
    if mode not in DECIMAL_MODES:
        raise ValueError(f"cdc table config: decimal_handling '{mode}' is not one of {DECIMAL_MODES}")
    out = {c: Encoding("timestamp", u) for c, u in _configured(spec, "timestamps").items()}
    out.update({c: Encoding("time", u) for c, u in _configured(spec, "times").items()})
    out.update({c: Encoding("date") for c in spec.get("dates") or ()})
    out.update({c: Encoding("decimal", scale=int(s), precision=int(p), mode=mode)
                for c, (p, s) in (spec.get("decimals") or {}).items()})
    for column, encoding in out.items():
        if encoding.unit not in PER_SECOND:
            raise ValueError(f"cdc table config: column '{column}' has unit '{encoding.unit}'; use one of "
                             f"{sorted(PER_SECOND)}")
    return out


def schema_encoding(field: dict[str, Any]) -> Encoding | None:
    """A Kafka Connect schema field -> its encoding (logical name first, then physical type)."""
    name, kind = field.get("name"), field.get("type")
    if name == "org.apache.kafka.connect.data.Decimal":
        params = field.get("parameters") or {}
        return Encoding("decimal", scale=int(params.get("scale", 0)),
                        precision=int(params.get("connect.decimal.precision", 38)), mode="precise")
    if name in _NAMED:
        return _NAMED[name]
    if kind == "bytes":
        return Encoding("binary")
    if kind in ("float", "double"):
        return Encoding("float32" if kind == "float" else "float64")
    if kind in _PLAIN:
        return Encoding(kind)
    return None  # struct, array, map: typed from the values


def encoding_for_type(arrow_type: pa.DataType, configured: Encoding | None) -> Encoding | None:
    """How to read a column the target table already types, when neither schema nor config says."""
    if configured is not None:
        return configured
    if pa.types.is_timestamp(arrow_type):
        return Encoding("timestamp")
    if pa.types.is_date(arrow_type):
        return Encoding("date")
    if pa.types.is_decimal(arrow_type):
        return Encoding("decimal", scale=arrow_type.scale, precision=arrow_type.precision)
    return None


# -- values ------------------------------------------------------------------------------------

def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{value!r} is not a number")
    return value


def _integer(value: Any) -> int:
    value = _number(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{value!r} is not an integer")
        return int(value)
    return value


def _timestamp(value: Any, unit: str) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO-8601 timestamp") from None
        return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)
    if isinstance(value, datetime):
        return value
    ticks = _integer(value)
    per_second = PER_SECOND[unit]
    seconds, rest = divmod(ticks, per_second)
    return EPOCH + timedelta(seconds=seconds, microseconds=rest * 1_000_000 // per_second)


def _date(value: Any) -> date:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO-8601 date") from None
    return date(1970, 1, 1) + timedelta(days=_integer(value))


def _time(value: Any, unit: str) -> str:
    return _time_of_day(value, unit).isoformat(timespec="microseconds")


def _time_of_day(value: Any, unit: str) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = time.fromisoformat(text[:-1] if text.endswith("Z") else text)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO-8601 time") from None
        return parsed.replace(tzinfo=None)
    micros = _integer(value) * 1_000_000 // PER_SECOND[unit]
    if not 0 <= micros < 86_400_000_000:
        raise ValueError(f"{value!r} is not a time of day in {unit}")
    return (datetime.min + timedelta(microseconds=micros)).time()


def _unscaled(text: Any) -> int:
    """Debezium precise decimals: base64 of the big-endian two's-complement unscaled value."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not base64 decimal bytes")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{text!r} is not base64 decimal bytes (decimal.handling.mode=precise; "
                         "set decimal_handling: string in sources.yaml if the connector sends digits)") from None
    return int.from_bytes(raw, "big", signed=True)


def _decimal(value: Any, encoding: Encoding) -> Decimal:
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, dict):  # VariableScaleDecimal: {"scale": s, "value": base64 bytes}
        if not {"scale", "value"} <= set(value):
            raise ValueError(f"{value!r} is not a variable-scale decimal (scale and value)")
        number = Decimal(_unscaled(value.get("value"))).scaleb(-_integer(value.get("scale")))
    elif isinstance(value, str) and encoding.mode == "precise":
        if encoding.scale is None:
            raise ValueError("no scale for a precise decimal: the message has no schema and the column no config")
        number = Decimal(_unscaled(value)).scaleb(-encoding.scale)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number") from None
    else:
        number = Decimal(repr(_number(value)))  # double mode: the shortest repr, not the binary expansion
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite decimal")
    if encoding.scale is not None:
        exact = number.quantize(Decimal(1).scaleb(-encoding.scale))
        if exact != number and not isinstance(value, (int, float)):
            raise ValueError(f"{value!r} has more than {encoding.scale} decimal places")
        number = exact
    return number


def decode(value: Any, encoding: Encoding | None) -> Any:
    """One JSON value -> its Python value under `encoding` (None: as JSON gave it)."""
    if value is None or encoding is None:
        return value
    kind = encoding.kind
    if kind == "timestamp":
        return _timestamp(value, encoding.unit)
    if kind == "date":
        return _date(value)
    if kind == "time":
        return _time(value, encoding.unit)
    if kind == "decimal":
        return _decimal(value, encoding)
    if kind == "binary":
        if isinstance(value, bytes):
            return value
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not base64 bytes")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{value!r} is not base64 bytes") from None
    return value


def conform(value: Any, arrow_type: pa.DataType) -> Any:
    """Check a decoded value fits `arrow_type` without loss (pyarrow would truncate 1.5 to 1)."""
    if value is None:
        return None
    if pa.types.is_integer(arrow_type):
        return _integer(value)
    if pa.types.is_floating(arrow_type):
        return _number(value)
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not a string")
    elif pa.types.is_boolean(arrow_type):
        if not isinstance(value, bool):
            raise ValueError(f"{value!r} is not a boolean")
    elif pa.types.is_timestamp(arrow_type):
        if not isinstance(value, datetime):
            raise ValueError(f"{value!r} is not a timestamp")
    elif pa.types.is_date(arrow_type):
        if not isinstance(value, date) or isinstance(value, datetime):
            raise ValueError(f"{value!r} is not a date")
    elif pa.types.is_decimal(arrow_type):
        if not isinstance(value, Decimal):
            raise ValueError(f"{value!r} is not a decimal")
    elif pa.types.is_struct(arrow_type) and not isinstance(value, dict):
        raise ValueError(f"{value!r} is not an object")
    elif pa.types.is_list(arrow_type) and not isinstance(value, list):
        raise ValueError(f"{value!r} is not a list")
    return value


# -- messages ----------------------------------------------------------------------------------

def parse_envelope(payload: str, spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Encoding]]:
    """One change as a flat row (image columns + _op, _lsn, _source_ts) and the encodings its
    schema declares (empty without a schema). Image values are still as JSON gave them;
    ValueError says why the message is unusable."""
    message = json.loads(payload)
    if not isinstance(message, dict):
        raise ValueError("not a JSON object")
    schema = None
    if "schema" in message and "payload" in message:  # JsonConverter with schemas.enable=true
        schema, message = message["schema"], message["payload"]
        if not isinstance(message, dict):
            raise ValueError("payload is not a JSON object")
    fields = {f.get("field"): f for f in (schema or {}).get("fields") or () if isinstance(f, dict)}
    if "__op" in message or "__deleted" in message:  # unwrapped (ExtractNewRecordState)
        op = "d" if str(message.get("__deleted", "false")).lower() == "true" else message.get("__op")
        image = {k: v for k, v in message.items() if not k.startswith("__")}
        lsn = message.get("__lsn", message.get("__source_lsn"))
        ts_ms = message.get("__source_ts_ms", message.get("__ts_ms"))
        columns = fields
    else:
        op = message.get("op")
        side = "before" if op == "d" else "after"
        image = message.get(side)
        if image is None:
            image = {}
        if not isinstance(image, dict):
            raise ValueError(f"the {side} image is a {type(image).__name__}, not an object")
        source = message.get("source") or {}
        if not isinstance(source, dict):
            raise ValueError("source is not an object")
        lsn, ts_ms = source.get("lsn"), source.get("ts_ms", message.get("ts_ms"))
        columns = {f.get("field"): f for f in (fields.get(side) or {}).get("fields") or () if isinstance(f, dict)}
    if op not in OPS:
        raise ValueError(f"unknown op {op!r} (expected one of c, r, u, d)")
    missing = [k for k in spec["keys"] if image.get(k) is None]
    if missing:
        raise ValueError(f"no key: {missing} missing from the {'before' if op == 'd' else 'after'} image")
    if lsn is None:
        raise ValueError("no sequence: source.lsn (or __lsn) missing")
    try:
        sequence = _integer(lsn)
        source_ts = _timestamp(ts_ms, "millis") if ts_ms is not None else None
    except ValueError as exc:
        raise ValueError(f"bad source position: {exc}") from None
    encodings = {name: e for name, f in columns.items() if name in image and (e := schema_encoding(f)) is not None}
    return {**image, "_op": op, "_lsn": sequence, "_source_ts": source_ts}, encodings


def _inferred_type(values: list[Any]) -> pa.DataType:
    """The type most of a column's values have (numbers: float when any is fractional)."""
    kinds = Counter("number" if isinstance(v, (int, float)) and not isinstance(v, bool) else type(v).__name__
                    for v in values if v is not None)
    if not kinds:
        return pa.null()
    kind = kinds.most_common(1)[0][0]
    if kind == "number":
        return pa.float64() if any(isinstance(v, float) for v in values) else pa.int64()
    sample = [v for v in values if v is not None and type(v).__name__ == kind]
    try:
        return pa.array(sample).type
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array(sample[:1]).type


def declared_types(spec: dict[str, Any]) -> dict[str, pa.DataType]:
    """The column types a table's cdc: entry declares under `columns:` (the names landing
    files use: int64, string, timestamp, decimal(p,s), ...)."""
    from include.lakehouse.ingest.files import _arrow_type

    return {column: _arrow_type(name) for column, name in (spec.get("columns") or {}).items()}


def typed_changes(parsed: list[tuple[dict[str, Any], dict[str, Encoding]]], spec: dict[str, Any],
                  table_types: dict[str, pa.DataType]) -> tuple[pa.Table, list[tuple[int, str]]]:
    """Parsed messages -> one Arrow table of the good ones, and (index, reason) for the bad ones.

    A column's type is the target table's when it has the column, else the one the config
    declares (`columns:`, then the encodings), else the one the message schemas give, else
    the one most messages agree on; a message whose value does not fit is bad, with the
    column and value in the reason. Declare at least the keys: before the table exists, a
    lone bad first message would otherwise decide a column's type."""
    configured = config_encodings(spec)
    table_types = {**declared_types(spec), **table_types}
    columns = list(dict.fromkeys(c for row, _ in parsed for c in row))
    bad: dict[int, str] = {}
    types: dict[str, pa.DataType] = {}
    values: dict[str, list[Any]] = {}
    for column in columns:
        if column in META_TYPES:
            types[column], values[column] = META_TYPES[column], [row.get(column) for row, _ in parsed]
            continue
        decoded = []
        for index, (row, encodings) in enumerate(parsed):
            known = table_types.get(column)
            encoding = encodings.get(column) or (encoding_for_type(known, configured.get(column)) if known is not None
                                                 else configured.get(column))
            try:
                decoded.append(decode(row.get(column), encoding))
            except (ValueError, TypeError, OverflowError) as exc:
                bad.setdefault(index, f"column {column}: {exc}")
                decoded.append(None)
        declared = [e.arrow_type for _, encodings in parsed if (e := encodings.get(column)) is not None]
        types[column] = (table_types.get(column) or (configured[column].arrow_type if column in configured else None)
                         or (Counter(declared).most_common(1)[0][0] if declared else None)
                         or _inferred_type(decoded))
        for index, value in enumerate(decoded):
            try:
                decoded[index] = conform(value, types[column])
            except ValueError as exc:
                bad.setdefault(index, f"column {column}: {exc} ({types[column]} expected)")
                decoded[index] = None
        values[column] = decoded
    good = [i for i in range(len(parsed)) if i not in bad]
    # a column no message has a value for, and the table does not have yet, has no type to
    # create it with (Delta has no null type): it arrives with its first value
    columns = [c for c in columns if not pa.types.is_null(types[c]) or c in table_types]
    arrays = {}
    for column in columns:
        kept = [values[column][i] for i in good]
        try:
            arrays[column] = pa.array(kept, types[column])
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # find the values that do not fit
            for i in good:
                try:
                    pa.array([values[column][i]], types[column])
                except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
                    bad.setdefault(i, f"column {column}: {values[column][i]!r} does not fit {types[column]}: {exc}")
            return _retry_without(parsed, spec, table_types, bad)
    return pa.table(arrays) if columns else pa.table({}), sorted(bad.items())


def _retry_without(parsed, spec, table_types, bad: dict[int, str]) -> tuple[pa.Table, list[tuple[int, str]]]:
    """Type again without the messages found bad while building arrays (rare: overflows)."""
    keep = [i for i in range(len(parsed)) if i not in bad]
    table, more = typed_changes([parsed[i] for i in keep], spec, table_types)
    bad.update({keep[i]: reason for i, reason in more})
    return table, sorted(bad.items())


__all__ = ["Encoding", "parse_envelope", "typed_changes", "decode", "config_encodings", "schema_encoding"]
