"""Properties of the CDC -> SCD2 chain over random Debezium streams (hypothesis).

A stream is a source history (creates, updates, deletes, re-creates of a few keys, with
source times that only move forward, as a database's commits do) delivered the way Kafka
and Debezium deliver it: cut into random batches, with redelivered duplicates, out of
order, and applied long after it happened (silver and gold commit "now", years after the
source times), with the dimension built after some batches only. After every run of the
chain: silver equals a plain reference (the newest event per key by LSN; a delete removes
the key), and gold keeps the SCD2 invariants: its current versions are silver's rows; a
key's versions never overlap and never end before they start; one current version per
live key, none for a deleted one (with silver's tracked and type 1 values); every version starts at a source change time and a
version closed by a delete ends at that delete's source time. Messages with a bad key, a bad
value or a bad image are quarantined once each and never stop the good ones.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pyarrow as pa
from deltalake import DeltaTable
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.lakehouse.cdc.flow import apply_bronze_changes
from include.lakehouse.dimensions.build import build_dimension
from include.lakehouse.ingest.kafka import BRONZE_SCHEMA
from include.lakehouse.source.generator import debezium_envelope
from include.lakehouse.tables.delta import append
from include.lakehouse.tables.registry import get_table

TOPIC = "shop.public.customers"
START = datetime(2024, 1, 1, tzinfo=timezone.utc)
CITIES = ["Oslo", "Rome", "Lima"]


@st.composite
def streams(draw):
    """(events, batches, gold_after): the source history, how it is delivered, when gold is built."""
    events, alive, at, lsn = [], {}, START, 100
    for _ in range(draw(st.integers(1, 14))):
        key = draw(st.integers(1, 3))
        at += timedelta(milliseconds=draw(st.sampled_from([0, 1, 7, 3_600_000])))  # ties included
        lsn += draw(st.integers(1, 3))
        op = draw(st.sampled_from(["u", "u", "d"])) if key in alive else "c"
        row = {"customer_id": key, "name": draw(st.sampled_from(["Ann", "Bo"])), "email": f"{key}@x",
               "city": draw(st.sampled_from(CITIES)), "country": "NO", "segment": "consumer",
               "created_at": START, "updated_at": at}
        if op == "d":
            before = alive.pop(key) if draw(st.booleans()) else {"customer_id": key}  # REPLICA IDENTITY DEFAULT
            events.append({"key": key, "op": "d", "lsn": lsn, "at": at,
                           "message": debezium_envelope("customers", "d", before, None, at, lsn)})
        else:
            events.append({"key": key, "op": op, "lsn": lsn, "at": at, "row": row,
                           "message": debezium_envelope("customers", op, alive.get(key), row, at, lsn)})
            alive[key] = row
    for bad in draw(st.lists(st.sampled_from(["key", "type", "image"]), max_size=2)):  # to quarantine
        lsn += 1
        row = dict(events[0]["message"]["after"])  # a create: as Debezium encoded it
        row = {"key": {**row, "customer_id": "abc"}, "type": {**row, "city": 42}, "image": [1, 2]}[bad]
        events.append({"key": None, "op": "bad", "lsn": lsn, "at": at,
                       "message": {"op": "u", "after": row, "source": {"lsn": lsn, "ts_ms": 0}}})
    redelivered = draw(st.lists(st.integers(0, len(events) - 1), max_size=4))
    order = draw(st.permutations(list(range(len(events))) + redelivered))
    if draw(st.booleans()):  # often nearly in order: Kafka keeps a partition's order
        order = sorted(order)
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(order) - 1)), max_size=3)))
    batches = [order[a:b] for a, b in zip([0] + cuts, cuts + [len(order)]) if order[a:b]]
    gold_after = draw(st.lists(st.booleans(), min_size=len(batches), max_size=len(batches)))
    return events, batches, gold_after


@contextmanager
def fresh_lakehouse():
    previous = os.environ.get("LAKEHOUSE_ROOT")
    with tempfile.TemporaryDirectory(prefix="cdc-property-") as root:
        os.environ["LAKEHOUSE_ROOT"] = root
        try:
            yield root
        finally:
            if previous is None:
                os.environ.pop("LAKEHOUSE_ROOT", None)
            else:
                os.environ["LAKEHOUSE_ROOT"] = previous


def land(messages: list[dict], first_offset: int) -> None:
    now = datetime.now(timezone.utc)
    rows = [{"key": None, "partition": 0, "offset": first_offset + i, "timestamp": now, "payload": json.dumps(m),
             "tombstone": False, "_ingested_at": now, "_batch_id": "p"} for i, m in enumerate(messages)]
    append(f"bronze/{TOPIC}", pa.Table.from_pylist(rows, schema=BRONZE_SCHEMA))


def reference_silver(delivered: list[dict]) -> dict[int, dict]:
    """The plain rule: per key, the event with the highest LSN; a delete means no row."""
    newest: dict[int, dict] = {}
    for event in (e for e in delivered if e["op"] != "bad"):
        if event["key"] not in newest or event["lsn"] > newest[event["key"]]["lsn"]:
            newest[event["key"]] = event
    return {k: e["row"] for k, e in newest.items() if e["op"] != "d"}


def read(table: str) -> list[dict]:
    uri = get_table(table).uri if table.split("/")[0] != "quarantine" else f"{os.environ['LAKEHOUSE_ROOT']}/{table}"
    return DeltaTable(uri).to_pyarrow_table().to_pylist() if DeltaTable.is_deltatable(uri) else []


def check_chain(delivered: list[dict]) -> None:
    expected = reference_silver(delivered)
    silver = {r["customer_id"]: r for r in read("silver/customers")}
    assert {k: (r["city"], r["name"], r["updated_at"]) for k, r in silver.items()} == \
        {k: (r["city"], r["name"], r["updated_at"]) for k, r in expected.items()}
    gold = read("gold/dim_customer")
    bad = [e["message"] for e in delivered if e["op"] == "bad"]
    quarantine = read(f"quarantine/cdc.{TOPIC}") if bad else []
    assert sorted(r["_raw"] for r in quarantine) == sorted(json.dumps(m) for m in bad)  # each once
    source_times = {(e["key"], e["at"]) for e in delivered if e["op"] not in ("d", "bad")}
    delete_times = {(e["key"], e["at"]) for e in delivered if e["op"] == "d"}
    for key in {r["customer_id"] for r in gold} | set(silver):
        versions = sorted((r for r in gold if r["customer_id"] == key), key=lambda r: r["valid_from"])
        current = [v for v in versions if v["is_current"]]
        if key in silver:
            assert len(current) == 1, (key, versions)
            row = silver[key]
            assert (current[0]["city"], current[0]["name"]) == (row["city"], row["name"]), (key, versions)
            assert current[0]["valid_from"] <= row["updated_at"], (key, versions)  # same city: same version
        else:
            assert not current, (key, versions)
        for version, following in zip(versions, versions[1:] + [None]):
            assert (key, version["valid_from"]) in source_times, (key, version)
            assert version["is_current"] == (version["valid_to"] is None)
            if version["valid_to"] is not None:
                assert version["valid_to"] > version["valid_from"], (key, versions)
            if following is not None:
                assert version["valid_to"] is not None and version["valid_to"] <= following["valid_from"], versions
            if version["is_deleted"]:
                assert (key, version["valid_to"]) in delete_times, (key, version, sorted(delete_times))
            elif following is not None:
                assert version["valid_to"] == following["valid_from"], (key, versions)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(streams())
def test_cdc_to_scd2_chain_keeps_its_invariants_on_random_debezium_streams(stream):
    events, batches, gold_after = stream
    with fresh_lakehouse():
        delivered, offset = [], 0
        for batch, build in zip(batches, gold_after):
            land([events[i]["message"] for i in batch], offset)
            offset += len(batch)
            delivered += [events[i] for i in batch]
            apply_bronze_changes("customers")
            if build:  # otherwise gold lags behind silver until a later build
                build_dimension("dim_customer")
                check_chain(delivered)
        assert apply_bronze_changes("customers")["skipped"]
        build_dimension("dim_customer")
        check_chain(delivered)
        version = DeltaTable(get_table("gold/dim_customer").uri).version() if read("gold/dim_customer") else None
        build_dimension("dim_customer")  # a rerun changes nothing
        if version is not None:
            assert DeltaTable(get_table("gold/dim_customer").uri).version() == version
