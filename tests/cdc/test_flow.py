"""Debezium topics in bronze -> silver current state (cdc/flow.py); the gold dimensions built
from silver are tested in tests/dimensions/test_build.py."""

from __future__ import annotations

import json
import random
from datetime import datetime, timezone

import pyarrow as pa
from deltalake import DeltaTable

from include.lakehouse.cdc.flow import apply_bronze_changes
from include.lakehouse.dimensions.build import build_dimension
from include.lakehouse.ingest.kafka import BRONZE_SCHEMA
from include.lakehouse.source.generator import ShopSource, debezium_envelope
from include.lakehouse.tables.delta import append
from include.lakehouse.tables.registry import get_table

TOPIC = "shop.public.customers"
COLUMNS = ["customer_id", "name", "email", "city", "country", "segment", "created_at", "updated_at"]


def land(messages: list[str | None]) -> None:
    """Append raw messages to bronze as ingest_kafka would."""
    now = datetime.now(timezone.utc)
    rows = [{"key": None, "partition": 0, "offset": i, "timestamp": now, "payload": m, "tombstone": m is None,
             "_ingested_at": now, "_batch_id": "t"} for i, m in enumerate(messages)]
    append(f"bronze/{TOPIC}", pa.Table.from_pylist(rows, schema=BRONZE_SCHEMA))


def silver_rows() -> dict[int, dict]:
    table = DeltaTable(get_table("silver/customers").uri).to_pyarrow_table()
    return {r["customer_id"]: {c: r[c] for c in COLUMNS} for r in table.to_pylist()}


def test_replay_with_reorder_duplicates_tombstones_and_deletes_equals_the_source(lakehouse_root):
    shop = ShopSource(scale=0.1)
    rng = random.Random(7)
    days = ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]
    late = []
    for day in days:
        messages = [json.dumps(e) for e in shop.customer_changes(day)]
        messages += [None] * 3  # tombstones
        messages += rng.sample(messages[:-3], min(5, len(messages) - 3))  # redelivered duplicates
        rng.shuffle(messages)  # out of order within the batch
        if day == "2024-01-02":
            late = messages[:4]  # these arrive only after the next day's batch
            messages = messages[4:]
        land(messages)
        apply_bronze_changes("customers")
        if day == "2024-01-03":
            land(late)
            apply_bronze_changes("customers")
    expected = {r["customer_id"]: r for r in shop.customers(days[-1]).to_pylist()}
    assert silver_rows() == expected
    feed = DeltaTable(get_table("silver/customers").uri).load_cdf(starting_version=0).read_all()
    assert "delete" in set(pa.table(feed).column("_change_type").to_pylist())
    build_dimension("dim_customer")
    dim = DeltaTable(get_table("gold/dim_customer").uri).to_pyarrow_table().to_pylist()
    current = {r["customer_id"]: r["city"] for r in dim if r["is_current"]}
    assert current == {k: v["city"] for k, v in expected.items()}
    closed_by_delete = {r["customer_id"] for r in dim if r["is_deleted"]}
    assert closed_by_delete and not closed_by_delete & set(expected)


def test_unwrapped_form_bad_messages_and_rerun(lakehouse_root):
    good = {"customer_id": 1, "name": "Ada", "email": "a@x", "city": "Oslo", "country": "NO", "segment": "consumer",
            "created_at": 1_704_067_200_000_000, "updated_at": 1_704_067_200_000_000}
    land([
        json.dumps({**good, "__op": "c", "__lsn": 10, "__source_ts_ms": 1_704_067_200_000, "__deleted": "false"}),
        json.dumps({**good, "customer_id": 2, "__op": "c", "__lsn": 11, "__deleted": "false"}),
        json.dumps({**good, "customer_id": 2, "__op": "d", "__lsn": 12, "__deleted": "true"}),
        json.dumps({"op": "x", "after": good, "source": {"lsn": 13}}),             # unknown op
        json.dumps({"op": "c", "after": {**good, "customer_id": None}, "source": {"lsn": 14}}),  # no key
        json.dumps({"op": "u", "after": good, "source": {}}),                      # no sequence
        "{not json",
    ])
    result = apply_bronze_changes("customers")
    assert result["quarantined"] == 4 and set(silver_rows()) == {1}
    reasons = " ".join(r["_reason"] for r in DeltaTable(
        str(lakehouse_root / "quarantine" / f"cdc.{TOPIC}")).to_pyarrow_table().to_pylist())
    for expected in ["unknown op 'x'", "no key", "no sequence", "Expecting"]:
        assert expected in reasons
    version = DeltaTable(get_table("silver/customers").uri).version()
    assert apply_bronze_changes("customers")["skipped"]
    assert DeltaTable(get_table("silver/customers").uri).version() == version


def ts(day: int, hour: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, tzinfo=timezone.utc)


def envelope(op, customer, lsn, before=None):
    row = {"customer_id": 1, "name": "Ada", "email": "a@x", "country": "NO", "segment": "consumer",
           "created_at": ts(1), **customer}
    return json.dumps(debezium_envelope("customers", op, before, row if op != "d" else None, row["updated_at"], lsn)
                      if op != "d" else debezium_envelope("customers", "d", row, None, row["updated_at"], lsn))


def test_a_bronze_table_created_without_change_feed_is_read_then_switched_on(lakehouse_root):
    from deltalake import write_deltalake

    first = debezium_envelope("customers", "c", None, {"customer_id": 5, "city": "Rome", "updated_at": ts(2)}, ts(2), 1)
    now = datetime.now(timezone.utc)
    row = {"key": None, "partition": 0, "offset": 0, "timestamp": now, "payload": json.dumps(first),
           "tombstone": False, "_ingested_at": now, "_batch_id": "t"}
    write_deltalake(get_table(f"bronze/{TOPIC}").uri, pa.Table.from_pylist([row], schema=BRONZE_SCHEMA))  # no CDF
    apply_bronze_changes("customers")
    second = debezium_envelope("customers", "u", None, {"customer_id": 5, "city": "Milan", "updated_at": ts(3)}, ts(3), 2)
    land([json.dumps(second)])
    apply_bronze_changes("customers")
    silver = DeltaTable(get_table("silver/customers").uri).to_pyarrow_table().to_pylist()
    assert [(r["customer_id"], r["city"]) for r in silver] == [(5, "Milan")]


def test_source_schema_change_evolves_silver_and_a_dropped_column_is_kept(lakehouse_root):
    base = {"customer_id": 1, "city": "Oslo", "email": "a@x", "updated_at": ts(1)}
    land([json.dumps(debezium_envelope("customers", "c", None, base, ts(1), 1))])
    apply_bronze_changes("customers")
    added = {**base, "city": "Bergen", "loyalty_tier": "gold", "updated_at": ts(2)}
    land([json.dumps(debezium_envelope("customers", "u", base, added, ts(2), 2))])
    apply_bronze_changes("customers")
    dropped = {k: v for k, v in added.items() if k != "email"} | {"city": "Rome", "updated_at": ts(3)}
    newcomer = {"customer_id": 2, "city": "Paris", "loyalty_tier": "silver", "updated_at": ts(3)}
    land([json.dumps(debezium_envelope("customers", "u", added, dropped, ts(3), 3)),
          json.dumps(debezium_envelope("customers", "c", None, newcomer, ts(3), 4))])
    apply_bronze_changes("customers")
    rows = {r["customer_id"]: r for r in DeltaTable(get_table("silver/customers").uri).to_pyarrow_table().to_pylist()}
    assert (rows[1]["city"], rows[1]["loyalty_tier"], rows[1]["email"]) == ("Rome", "gold", "a@x")
    assert (rows[2]["city"], rows[2]["email"]) == ("Paris", None)


def quarantined() -> list[dict]:
    uri = get_table("silver/customers").uri.replace("/silver/customers", f"/quarantine/cdc.{TOPIC}")
    return DeltaTable(uri).to_pyarrow_table().to_pylist() if DeltaTable.is_deltatable(uri) else []


def bronze_version() -> int:
    return DeltaTable(get_table(f"bronze/{TOPIC}").uri).version()


def test_a_batch_that_changes_nothing_moves_the_position_and_a_bad_message_is_quarantined_once(lakehouse_root):
    first = envelope("c", {"city": "Oslo", "updated_at": ts(1)}, 1)
    land([first])
    apply_bronze_changes("customers")
    land(["{not json", first])  # a bad message beside a redelivery: silver does not change
    apply_bronze_changes("customers")
    assert DeltaTable(get_table("silver/customers").uri).transaction_version(f"cdc_apply.bronze/{TOPIC}") == \
        bronze_version()
    land([envelope("u", {"city": "Bergen", "updated_at": ts(2)}, 2)])
    apply_bronze_changes("customers")
    land(["[1, 2]"])  # only bad messages in a batch: the position moves on all the same
    apply_bronze_changes("customers")
    assert apply_bronze_changes("customers")["skipped"]
    assert sorted(r["_raw"] for r in quarantined()) == ["[1, 2]", "{not json"]
    assert silver_rows()[1]["city"] == "Bergen"


def test_quarantine_is_once_per_message_when_a_killed_run_rereads_its_versions(lakehouse_root):
    """Quarantine written, silver not (killed): the rerun re-reads the same bronze versions
    plus newer ones and quarantines only what is new."""
    import include.lakehouse.cdc.flow as cdc_flow

    land(["{not json", envelope("c", {"city": "Oslo", "updated_at": ts(1)}, 1)])
    cdc_flow._quarantine(TOPIC, [{"_raw": "{not json", "_reason": "x", "partition": 0, "offset": 0,
                                   "_bronze_version": bronze_version()}], bronze_version())
    land(["{also bad"])
    apply_bronze_changes("customers")
    assert sorted(r["_raw"] for r in quarantined()) == ["{also bad", "{not json"]
    assert set(silver_rows()) == {1}


def test_one_bad_value_quarantines_its_message_and_the_rest_apply(lakehouse_root):
    good = {"customer_id": 1, "name": "Ada", "email": "a@x", "city": "Oslo", "country": "NO", "segment": "consumer",
            "created_at": 1_704_067_200_000_000, "updated_at": 1_704_067_200_000_000}

    def change(lsn, **values):
        return json.dumps({"op": "c", "after": {**good, "customer_id": lsn, **values},
                           "source": {"lsn": lsn, "ts_ms": 1_704_067_200_000}})

    land([change(1), change(2, customer_id="abc"), change(3, city=42), change(4),
          json.dumps({"op": "u", "after": [1, "Ada"], "source": {"lsn": 5}}), change(6, updated_at="yesterday")])
    result = apply_bronze_changes("customers")  # silver does not exist yet: types from sources.yaml
    assert set(silver_rows()) == {1, 4} and result["quarantined"] == 4
    land([change(7, customer_id="7"), change(8, created_at=1.5), change(9, country=None), change(10, name=["x"])])
    apply_bronze_changes("customers")  # silver exists: its types decide
    assert set(silver_rows()) == {1, 4, 9}
    reasons = {json.loads(r["_raw"])["source"]["lsn"]: r["_reason"] for r in quarantined()}
    assert "column customer_id: 'abc'" in reasons[2] and "column city: 42 is not a string" in reasons[3]
    assert "after image is a list" in reasons[5] and "'yesterday' is not an ISO-8601 timestamp" in reasons[6]
    assert "column customer_id: '7'" in reasons[7] and "column created_at: 1.5 is not an integer" in reasons[8]
    assert "column name: ['x'] is not a string" in reasons[10]


def customer(key: int, city: str, at: datetime) -> dict:
    return {"customer_id": key, "name": "Ada", "email": f"{key}@x", "city": city, "country": "NO",
            "segment": "consumer", "created_at": ts(1), "updated_at": at}


def test_three_concurrent_runs_apply_each_batch_once(lakehouse_root):
    """Three cdc_apply tries at once, then three scd2 builds at once (a stuck try, its retry, a
    manual run): every process ends well, each batch lands once in silver and in gold."""
    from tests.processes import race

    for day, city in ((1, "Oslo"), (5, "Rome")):
        land([json.dumps(debezium_envelope("customers", "c" if day == 1 else "u", None, customer(k, city, ts(day)),
                                           ts(day), 100 * day + k)) for k in range(1, 21)])
        applied = race("include.lakehouse.cdc.flow.apply_bronze_changes", [(("customers",), {})] * 3)
        assert [status for status, _ in applied] == ["ok"] * 3, applied
        assert sum(not result.get("skipped") for _, result in applied) == 1
        built = race("include.lakehouse.dimensions.build.build_dimension", [(("dim_customer",), {})] * 3)
        assert [status for status, _ in built] == ["ok"] * 3, built
        assert sum(not result.get("skipped") for _, result in built) == 1
    dim = DeltaTable(get_table("gold/dim_customer").uri).to_pyarrow_table().to_pylist()
    assert len(dim) == 40 and len({r["customer_sk"] for r in dim}) == 40
    assert {r["customer_id"]: r["city"] for r in dim if r["is_current"]} == {k: "Rome" for k in range(1, 21)}
    silver = DeltaTable(get_table("silver/customers").uri)
    # one merge per batch (racing creators of the empty table may both commit a CREATE TABLE: no rows)
    writes = [c for c in silver.history() if c.get("operation") in ("MERGE", "WRITE")]
    assert len(writes) <= 2


def test_a_cdc_run_killed_after_its_tombstones_deletes_on_rerun(lakehouse_root):
    from tests.processes import run_and_kill

    land([json.dumps(debezium_envelope("customers", "c", None, customer(k, "Oslo", ts(1)), ts(1), k)) for k in (1, 2)])
    apply_bronze_changes("customers")
    land([json.dumps(debezium_envelope("customers", "d", customer(1, "Oslo", ts(1)), None, ts(2), 10))])
    assert run_and_kill("include.lakehouse.cdc.flow.apply_bronze_changes", ("customers",),
                        failpoint="cdc.after_tombstones") == -9
    assert set(silver_rows()) == {1, 2}
    apply_bronze_changes("customers")
    assert set(silver_rows()) == {2}
    build_dimension("dim_customer")
    dim = DeltaTable(get_table("gold/dim_customer").uri).to_pyarrow_table().to_pylist()
    assert [(r["customer_id"], r["valid_to"], r["is_deleted"]) for r in dim if r["customer_id"] == 1] == [(1, ts(2), True)]


def test_a_column_without_any_value_yet_does_not_block_the_first_batch(lakehouse_root):
    land([json.dumps(debezium_envelope("customers", "c", None, {**customer(1, "Oslo", ts(1)), "segment": None},
                                       ts(1), 1))])
    assert apply_bronze_changes("customers")["quarantined"] == 0
    land([json.dumps(debezium_envelope("customers", "u", None, customer(1, "Rome", ts(2)), ts(2), 2))])
    apply_bronze_changes("customers")
    assert (silver_rows()[1]["city"], silver_rows()[1]["segment"]) == ("Rome", "consumer")
