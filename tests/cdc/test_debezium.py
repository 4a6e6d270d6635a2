"""Debezium's JSON encodings of PostgreSQL types, with and without the JsonConverter schema."""

from __future__ import annotations

import base64
import json
from datetime import date, datetime, timezone
from decimal import Decimal

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from include.lakehouse.cdc.debezium import Encoding, decode, parse_envelope, typed_changes
from include.lakehouse.cdc.flow import apply_bronze_changes
from include.lakehouse.ingest.kafka import BRONZE_SCHEMA
from include.lakehouse.tables.delta import append
from include.lakehouse.tables.registry import get_table

TOPIC = "shop.public.orders"
SPEC = {"keys": ["order_id"], "timestamps": ["placed_at"], "dates": ["order_date"], "decimals": {"amount": [12, 2]},
        "decimal_handling": "string"}
AT = datetime(2024, 3, 1, 10, 30, 15, 123456, tzinfo=timezone.utc)


def precise(unscaled: int) -> str:
    """Debezium decimal.handling.mode=precise: base64 of big-endian two's-complement bytes."""
    return base64.b64encode(unscaled.to_bytes((unscaled.bit_length() + 8) // 8, "big", signed=True)).decode()


FIELDS = [
    {"field": "order_id", "type": "int64", "optional": False},
    {"field": "status", "type": "string", "optional": True},
    {"field": "order_date", "type": "int32", "optional": True, "name": "io.debezium.time.Date"},
    {"field": "placed_at", "type": "int64", "optional": True, "name": "io.debezium.time.MicroTimestamp"},
    {"field": "paid_at", "type": "string", "optional": True, "name": "io.debezium.time.ZonedTimestamp"},
    {"field": "packed_at", "type": "int64", "optional": True, "name": "io.debezium.time.Timestamp"},
    {"field": "shipped_at", "type": "int64", "optional": True, "name": "io.debezium.time.NanoTimestamp"},
    {"field": "pickup", "type": "int64", "optional": True, "name": "io.debezium.time.MicroTime"},
    {"field": "amount", "type": "bytes", "optional": True, "name": "org.apache.kafka.connect.data.Decimal",
     "parameters": {"scale": "2", "connect.decimal.precision": "12"}},
    {"field": "weight", "type": "bytes", "optional": True, "name": "org.apache.kafka.connect.data.Decimal",
     "parameters": {"scale": "3"}},
]
SOURCE_FIELDS = {"type": "struct", "field": "source", "fields": [{"field": "lsn", "type": "int64"},
                                                                  {"field": "ts_ms", "type": "int64"}]}


def with_schema(after: dict, lsn: int, op: str = "c") -> str:
    value = {"type": "struct", "optional": True, "name": f"{TOPIC}.Value", "fields": FIELDS}
    schema = {"type": "struct", "name": f"{TOPIC}.Envelope", "fields": [
        {**value, "field": "before"}, {**value, "field": "after"}, SOURCE_FIELDS,
        {"field": "op", "type": "string"}, {"field": "ts_ms", "type": "int64", "optional": True}]}
    payload = {"before": None, "after": after, "op": op, "source": {"lsn": lsn, "ts_ms": 1_709_289_015_123}}
    return json.dumps({"schema": schema, "payload": payload})


ENCODED = {
    "order_id": 7, "status": "paid", "order_date": 19783,  # days since epoch: 2024-03-01
    "placed_at": 1_709_289_015_123_456, "paid_at": "2024-03-01T11:30:15.123456+01:00",
    "packed_at": 1_709_289_015_123, "shipped_at": 1_709_289_015_123_456_789,
    "pickup": 37_815_123_456, "amount": precise(12345), "weight": precise(-1500),
}


def test_schema_names_and_parameters_decide_how_fields_decode():
    row, encodings = parse_envelope(with_schema(ENCODED, 3), SPEC)
    changes, bad = typed_changes([(row, encodings)], SPEC, {})
    assert bad == []
    got = changes.to_pylist()[0]
    assert got["order_date"] == date(2024, 3, 1)
    assert got["placed_at"] == got["paid_at"] == got["shipped_at"] == AT
    assert got["packed_at"] == AT.replace(microsecond=123000)
    assert got["pickup"] == "10:30:15.123456"  # Delta has no time type
    assert got["amount"] == Decimal("123.45") and got["weight"] == Decimal("-1.500")
    assert changes.schema.field("amount").type == pa.decimal128(12, 2)
    assert (got["_lsn"], got["_op"], got["_source_ts"]) == (3, "c", AT.replace(microsecond=123000))


def test_unwrapped_message_with_schema():
    schema = {"type": "struct", "fields": FIELDS + [{"field": "__op", "type": "string"},
                                                    {"field": "__lsn", "type": "int64"}]}
    message = json.dumps({"schema": schema, "payload": {**ENCODED, "__op": "u", "__lsn": 9, "__deleted": "false"}})
    changes, bad = typed_changes([parse_envelope(message, SPEC)], SPEC, {})
    assert bad == [] and changes.to_pylist()[0]["amount"] == Decimal("123.45")


@pytest.mark.parametrize("value, encoding, expected", [
    (1_709_289_015_123_456, Encoding("timestamp"), AT),
    ("2024-03-01T10:30:15.123456Z", Encoding("timestamp"), AT),
    ("2024-03-01 10:30:15.123456", Encoding("timestamp"), AT),  # no zone: UTC
    (1_709_289_015_123, Encoding("timestamp", "millis"), AT.replace(microsecond=123000)),
    ("2024-03-01", Encoding("date"), date(2024, 3, 1)),
    ("10:30:15.123456Z", Encoding("time"), "10:30:15.123456"),
    (37_815_123, Encoding("time", "millis"), "10:30:15.123000"),
    (precise(-150), Encoding("decimal", scale=2, mode="precise"), Decimal("-1.50")),
    ("19.99", Encoding("decimal", scale=2, mode="string"), Decimal("19.99")),
    (19.99, Encoding("decimal", scale=2, mode="double"), Decimal("19.99")),
    (19.999, Encoding("decimal", scale=2, mode="double"), Decimal("20.00")),  # double mode rounds
    ({"scale": 3, "value": precise(1500)}, Encoding("decimal", mode="variable"), Decimal("1.500")),
])
def test_debezium_value_encodings(value, encoding, expected):
    assert decode(value, encoding) == expected


@pytest.mark.parametrize("value, encoding, reason", [
    ("yesterday", Encoding("timestamp"), "not an ISO-8601 timestamp"),
    (True, Encoding("timestamp"), "not a number"),
    ("19.99", Encoding("decimal", scale=2, mode="precise"), "not base64"),
    ("1.999", Encoding("decimal", scale=2, mode="string"), "more than 2 decimal places"),
    ("NaN", Encoding("decimal", scale=2, mode="string"), "not a finite decimal"),
])
def test_undecodable_values_say_why(value, encoding, reason):
    with pytest.raises(ValueError, match=reason):
        decode(value, encoding)


def land(messages: list[str]) -> None:
    now = datetime.now(timezone.utc)
    rows = [{"key": None, "partition": 0, "offset": i, "timestamp": now, "payload": m, "tombstone": False,
             "_ingested_at": now, "_batch_id": "t"} for i, m in enumerate(messages)]
    append(f"bronze/{TOPIC}", pa.Table.from_pylist(rows, schema=BRONZE_SCHEMA))


def test_iso_timestamps_and_schema_envelopes_reach_silver(lakehouse_root):
    """An ISO-8601 string in a column declared a timestamp (ZonedTimestamp) is a timestamp,
    not a reason to quarantine; schema-carrying and plain envelopes mix in one topic."""
    plain = {"order_id": 1, "customer_id": 5, "order_date": 19783, "placed_at": "2024-03-01T10:30:15.123456Z",
             "status": "placed", "amount": "19.99", "currency": "EUR", "items": 2}
    land([json.dumps({"op": "c", "after": plain, "source": {"lsn": 1, "ts_ms": 1_709_289_015_123}}),
          json.dumps({"op": "c", "after": {**plain, "order_id": 2, "placed_at": 1_709_289_015_123_456},
                      "source": {"lsn": 2, "ts_ms": 1_709_289_015_123}})])
    result = apply_bronze_changes("orders")
    assert result["quarantined"] == 0
    land([with_schema(ENCODED, 3)])
    assert apply_bronze_changes("orders")["quarantined"] == 0
    rows = {r["order_id"]: r for r in DeltaTable(get_table("silver/orders").uri).to_pyarrow_table().to_pylist()}
    assert rows[1]["placed_at"] == rows[2]["placed_at"] == rows[7]["placed_at"] == AT
    assert (rows[1]["amount"], rows[7]["amount"]) == (Decimal("19.99"), Decimal("123.45"))
    assert rows[7]["order_date"] == date(2024, 3, 1) and rows[7]["pickup"] == "10:30:15.123456"


def test_types_come_from_the_table_then_the_config_then_the_majority():
    def message(key, city="Oslo"):
        return parse_envelope(json.dumps({"op": "c", "after": {"id": key, "city": city}, "source": {"lsn": 1}}),
                              {"keys": ["id"]})

    batch = [message(1), message("abc"), message(3, city=4)]
    changes, bad = typed_changes(batch, {"keys": ["id"]}, {})  # nothing declared: most messages decide
    assert changes.column("id").to_pylist() == [1] and [i for i, _ in bad] == [1, 2]
    alone = [message("abc")]
    assert typed_changes(alone, {"keys": ["id"]}, {})[1] == []  # a lone message decides: declare the keys
    assert "'abc' is not a number" in typed_changes(alone, {"keys": ["id"], "columns": {"id": "int64"}}, {})[1][0][1]
    assert typed_changes([message(7)], {"keys": ["id"], "columns": {"id": "int64"}}, {"id": pa.string()})[1] != []
