"""Kafka to bronze with the real embedded broker: exactly once across reruns and crashes,
poison messages quarantined, tombstones kept, clear errors for a dead broker or unknown topic."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from confluent_kafka import Producer
from deltalake import DeltaTable

from include.lakehouse.errors import LakehouseError
from include.lakehouse.ingest.kafka import check_topic_bronze, ingest_topic
from include.lakehouse.source.generator import ShopSource
from include.lakehouse.source.producer import publish_day
from include.lakehouse.tables import delta

TOPIC = "shop.order_events"


def produce(config, start: int, count: int) -> None:
    producer = Producer(config)
    for i in range(start, start + count):
        producer.produce(TOPIC, key=str(i % 17), value=json.dumps({"n": i}))
    producer.flush(30)


def bronze_numbers(root) -> list[int]:
    table = DeltaTable(str(root / "bronze" / TOPIC)).to_pyarrow_table()
    return sorted(json.loads(p)["n"] for p in table.column("payload").to_pylist() if p)


def test_two_runs_crash_and_more_messages_give_exactly_each_message_once(lakehouse_root, kafka_broker, monkeypatch):
    produce(kafka_broker, 0, 300)
    first = ingest_topic(TOPIC, kafka_broker)
    second = ingest_topic(TOPIC, kafka_broker)
    assert first["rows_inserted"] == 300 and second["rows_inserted"] == 0
    assert bronze_numbers(lakehouse_root) == list(range(300))
    assert first["partitions"] == 3 and len(first["next_offsets"]) == 3

    produce(kafka_broker, 300, 50)
    real_append = delta.append

    def append_then_crash(*args, **kwargs):  # the task dies after the Delta commit, before it ends
        result = real_append(*args, **kwargs)
        raise RuntimeError("worker killed")

    monkeypatch.setattr("include.lakehouse.ingest.kafka.append", append_then_crash)
    with pytest.raises(RuntimeError, match="worker killed"):
        ingest_topic(TOPIC, kafka_broker)
    monkeypatch.setattr("include.lakehouse.ingest.kafka.append", real_append)
    rerun = ingest_topic(TOPIC, kafka_broker)
    assert rerun["rows_inserted"] == 0
    assert bronze_numbers(lakehouse_root) == list(range(350))
    assert check_topic_bronze(TOPIC)["rows"] == 350


def test_a_poison_message_is_quarantined_and_the_rest_flow(lakehouse_root, kafka_broker):
    producer = Producer(kafka_broker)
    producer.produce(TOPIC, key="a", value=json.dumps({"n": 1}), partition=0)
    producer.produce(TOPIC, key="b", value=b"\xff\xfe not json", partition=0)
    producer.produce(TOPIC, key="c", value=None, partition=0)  # tombstone
    producer.produce(TOPIC, key="d", value=json.dumps({"n": 2}), partition=0)
    producer.flush(30)
    result = ingest_topic(TOPIC, kafka_broker)
    assert (result["rows_inserted"], result["rows_quarantined"]) == (3, 1)
    bronze = DeltaTable(str(lakehouse_root / "bronze" / TOPIC)).to_pyarrow_table().sort_by("offset").to_pylist()
    assert [(r["key"], r["tombstone"]) for r in bronze] == [("a", False), ("c", True), ("d", False)]
    bad = DeltaTable(str(lakehouse_root / "quarantine" / TOPIC)).to_pyarrow_table().to_pylist()
    assert bad[0]["key"] == "b" and "UTF-8" in bad[0]["_reason"] and bad[0]["offset"] == 1


def test_producer_publishes_a_day_once_and_debezium_topics_land_in_bronze(lakehouse_root, kafka_broker):
    producer = Producer(kafka_broker)
    sent = publish_day(producer, "shop.public.customers", "2024-01-04", scale=0.1)
    again = publish_day(producer, "shop.public.customers", "2024-01-04", scale=0.1)
    assert sent["messages"] > 0 and sent["with_snapshot"] and again["already_delivered"]
    later = publish_day(producer, "shop.public.customers", "2024-01-05", scale=0.1)
    assert not later["with_snapshot"]  # the connector snapshots once, then streams
    result = ingest_topic("shop.public.customers", kafka_broker)
    assert result["rows_inserted"] == sent["messages"] + later["messages"]
    rows = DeltaTable(str(lakehouse_root / "bronze" / "shop.public.customers")).to_pyarrow_table().to_pylist()
    envelopes = [json.loads(r["payload"]) for r in rows if r["payload"]]
    assert {e["op"] for e in envelopes} <= {"r", "c", "u", "d"} and all("lsn" in e["source"] for e in envelopes)
    snapshot = [e for e in envelopes if e["op"] == "r"]  # the customers that existed before 2024-01-04
    assert len(snapshot) == len(ShopSource(scale=0.1).customers("2024-01-03"))
    assert max(e["source"]["lsn"] for e in snapshot) < min(e["source"]["lsn"] for e in envelopes if e["op"] != "r")
    assert sum(r["tombstone"] for r in rows) == sum(e["op"] == "d" for e in envelopes)


def test_dead_broker_and_unknown_topic_are_clear_errors(lakehouse_root, kafka_broker):
    with pytest.raises(LakehouseError, match="topic 'shop.nope' does not exist"):
        ingest_topic("shop.nope", kafka_broker)
    with pytest.raises(LakehouseError, match="unreachable"):
        ingest_topic(TOPIC, {"bootstrap.servers": "127.0.0.1:9"}, )
    assert not DeltaTable.is_deltatable(str(lakehouse_root / "bronze" / TOPIC))


def test_publish_script_sends_every_topic_once(lakehouse_root, kafka_broker, capsys):
    from scripts.publish_shop import main

    assert main(["--bootstrap", kafka_broker["bootstrap.servers"], "--day", "2024-01-01", "--scale", "0.1"]) == 0
    first = capsys.readouterr().out
    assert "shop.public.customers: 100 messages" in first and "shop.order_events:" in first
    assert main(["--bootstrap", kafka_broker["bootstrap.servers"], "--day", "2024-01-01", "--scale", "0.1"]) == 0
    assert capsys.readouterr().out.count("already delivered") == 4
    assert main(["--bootstrap", "127.0.0.1:9", "--day", "2024-01-01"]) == 2


# --- exactly once and complete under real faults: races, kills, slow fetches, odd bytes ---

INGEST = "include.lakehouse.ingest.kafka.ingest_topic"
KINDS = ("good", "not_json", "not_utf8", "binary_key", "tombstone")


def produce_mix(config, rng, start: int, count: int) -> dict[str, set]:
    """A random mix of every kind of message; each carries its number in its key, so the test
    knows where every one of them must land. Returns {"bronze": keys, "quarantine": keys}."""
    producer = Producer(config)
    expected = {"bronze": set(), "quarantine": set()}
    for i in range(start, start + count):
        kind = rng.choice(KINDS)
        key = f"k{i}".encode()
        value = json.dumps({"n": i}).encode()
        if kind == "not_json":
            value = f"<n>{i}</n>".encode()
        elif kind == "not_utf8":
            value = b"\xff\xfe" + str(i).encode()
        elif kind == "binary_key":
            key = b"\xff\xc0" + str(i).encode()
        elif kind == "tombstone":
            value = None
        producer.produce(TOPIC, key=key, value=value)
        expected["quarantine" if kind in ("not_json", "not_utf8") else "bronze"].add(key)
    producer.flush(30)
    return expected


def landed_keys(root, layer: str) -> list[bytes]:
    """Every message's key as bytes (UTF-8 keys from `key`, the others from `key_raw`)."""
    path = root / layer / TOPIC
    if not DeltaTable.is_deltatable(str(path)):
        return []
    rows = DeltaTable(str(path)).to_pyarrow_table(columns=["key", "key_raw"]).to_pylist()
    return [r["key"].encode() if r["key"] is not None else r["key_raw"] for r in rows]


def assert_every_message_landed_once(root, sent: dict[str, set]) -> None:
    """Rows in = rows in bronze + rows quarantined, each message exactly once, in its place."""
    bronze, quarantine = landed_keys(root, "bronze"), landed_keys(root, "quarantine")
    assert len(bronze) == len(set(bronze)) and len(quarantine) == len(set(quarantine)), "duplicates"
    assert set(bronze) == sent["bronze"] and set(quarantine) == sent["quarantine"]
    assert len(bronze) + len(quarantine) == len(sent["bronze"]) + len(sent["quarantine"])
    check_topic_bronze(TOPIC)


def merge_sent(*parts: dict[str, set]) -> dict[str, set]:
    return {k: set().union(*(p[k] for p in parts)) for k in ("bronze", "quarantine")}


def test_concurrent_runs_on_one_topic_land_each_message_once(lakehouse_root, kafka_broker):
    """Three task tries on one topic at once (the issue: 30,000 messages became 60,000 rows):
    one wins each partition's positions, the others re-plan from the stored positions."""
    from tests.processes import race

    produce(kafka_broker, 0, 3000)
    outcomes = race(INGEST, [((TOPIC, kafka_broker), {}) for _ in range(3)])
    assert all(status == "ok" for status, _ in outcomes), outcomes
    assert bronze_numbers(lakehouse_root) == list(range(3000))
    assert sum(result["rows_inserted"] for _, result in outcomes) == 3000
    assert check_topic_bronze(TOPIC)["rows"] == 3000


def test_kill_between_quarantine_and_bronze_commits_quarantines_each_message_once(lakehouse_root, kafka_broker):
    """SIGKILL right after the quarantine commit, more messages arrive, the rerun reads a larger
    batch: the bad messages the dead run quarantined are not quarantined again."""
    import random

    from tests.processes import run_and_kill

    rng = random.Random(7)
    first = produce_mix(kafka_broker, rng, 0, 200)
    assert run_and_kill(INGEST, (TOPIC, kafka_broker), failpoint="kafka.after_quarantine_commit") == -9
    assert len(landed_keys(lakehouse_root, "quarantine")) == len(first["quarantine"])
    assert landed_keys(lakehouse_root, "bronze") == []  # died before the bronze commit
    second = produce_mix(kafka_broker, rng, 200, 100)
    rerun = ingest_topic(TOPIC, kafka_broker)
    assert rerun["rows_quarantined"] == len(second["quarantine"])
    assert rerun["rows_already_quarantined"] == len(first["quarantine"])
    assert_every_message_landed_once(lakehouse_root, merge_sent(first, second))


def test_non_utf8_keys_keep_their_bytes(lakehouse_root, kafka_broker):
    """A key that is not UTF-8 is kept as its raw bytes (`key_raw`), never as U+FFFD: two distinct
    binary keys must stay two keys. UTF-8 keys stay in `key`; a table written before `key_raw`
    existed gains it as a nullable column."""
    from include.lakehouse.ingest.kafka import BRONZE_SCHEMA
    from include.lakehouse.tables.delta import ensure_table

    old_schema = pa.schema([f for f in BRONZE_SCHEMA if f.name != "key_raw"])
    ensure_table(str(lakehouse_root / "bronze" / TOPIC), old_schema)
    producer = Producer(kafka_broker)
    producer.produce(TOPIC, key=b"\xff\x01", value=json.dumps({"n": 1}), partition=0)
    producer.produce(TOPIC, key=b"\xff\x02", value=json.dumps({"n": 2}), partition=0)
    producer.produce(TOPIC, key="caf\u00e9", value=json.dumps({"n": 3}), partition=0)
    producer.produce(TOPIC, key=None, value=json.dumps({"n": 4}), partition=0)
    producer.produce(TOPIC, key=b"\xfe", value=b"\xff not json", partition=0)
    producer.flush(30)
    result = ingest_topic(TOPIC, kafka_broker)
    assert (result["rows_inserted"], result["rows_quarantined"]) == (4, 1)
    table = DeltaTable(str(lakehouse_root / "bronze" / TOPIC))
    assert table.schema().to_arrow().field("key_raw").nullable
    bronze = table.to_pyarrow_table().sort_by("offset").to_pylist()
    assert [(r["key"], r["key_raw"]) for r in bronze] == [
        (None, b"\xff\x01"), (None, b"\xff\x02"), ("caf\u00e9", None), (None, None)]
    bad = DeltaTable(str(lakehouse_root / "quarantine" / TOPIC)).to_pyarrow_table().to_pylist()
    assert [(r["key"], r["key_raw"], r["_raw"]) for r in bad] == [(None, b"\xfe", b"\xff not json")]
    producer.produce(TOPIC, key=b"\xff\x03", value=json.dumps({"n": 5}), partition=1)
    producer.flush(30)
    assert ingest_topic(TOPIC, kafka_broker)["rows_inserted"] == 1  # the evolved table takes the next batch
    assert bronze_numbers(lakehouse_root) == [1, 2, 3, 4, 5]


def test_a_slow_first_fetch_does_not_skip_a_partition(lakehouse_root, kafka_broker):
    """The broker holds each fetch ~2.5 s (fetch.min.bytes never met): idle polls would take the
    silence for the end of every partition and report success with nothing read. The end of a
    partition is the client's end-of-partition event, so every message is read."""
    produce(kafka_broker, 0, 300)
    slow = {**kafka_broker, "fetch.wait.max.ms": 2500, "fetch.min.bytes": 50_000_000}
    result = ingest_topic(TOPIC, slow)
    assert result["rows_inserted"] == 300
    assert bronze_numbers(lakehouse_root) == list(range(300))


def test_runs_end_while_a_producer_keeps_writing_and_land_each_message_once(lakehouse_root, kafka_broker):
    """A topic that never goes quiet: each run still ends (every partition reported its end at
    least once since the run started) and the next one goes on from there."""
    import threading
    import time

    stop, sent = threading.Event(), [0]

    def keep_producing():
        while not stop.is_set():
            produce(kafka_broker, sent[0], 20)
            sent[0] += 20
            time.sleep(0.02)

    producer = threading.Thread(target=keep_producing)
    producer.start()
    try:
        time.sleep(0.5)
        during = [ingest_topic(TOPIC, kafka_broker, timeout_seconds=15) for _ in range(3)]
    finally:
        stop.set()
        producer.join()
    assert all(run["complete"] and run["rows_inserted"] > 0 for run in during)
    ingest_topic(TOPIC, kafka_broker)
    assert bronze_numbers(lakehouse_root) == list(range(sent[0]))


def test_an_unfinished_partition_fails_the_run_and_commits_nothing(lakehouse_root, kafka_broker):
    """The overall timeout is a safety net that fails loudly, never a silent end of a partition."""
    produce(kafka_broker, 0, 30)
    slow = {**kafka_broker, "fetch.wait.max.ms": 5000, "fetch.min.bytes": 50_000_000}
    with pytest.raises(LakehouseError, match=r"did not reach the end of partition\(s\) \[0, 1, 2\]"):
        ingest_topic(TOPIC, slow, timeout_seconds=1.5)
    assert not DeltaTable.is_deltatable(str(lakehouse_root / "bronze" / TOPIC))


def test_a_bounded_run_records_only_what_it_read(lakehouse_root, kafka_broker):
    produce(kafka_broker, 0, 300)
    runs = [ingest_topic(TOPIC, kafka_broker, max_messages=120)["rows_inserted"] for _ in range(4)]
    assert runs == [120, 120, 60, 0]
    assert bronze_numbers(lakehouse_root) == list(range(300))


def test_every_message_lands_once_in_bronze_or_quarantine_across_runs_and_races(lakehouse_root, kafka_broker):
    """Invariant over a random mix (good JSON, non-JSON, non-UTF-8 values, non-UTF-8 keys,
    tombstones): rows in = rows in bronze + rows quarantined, after races, a kill between the two
    commits, bounded runs and reruns."""
    import random

    from tests.processes import race, run_and_kill

    rng = random.Random(20261124)
    sent = produce_mix(kafka_broker, rng, 0, 600)
    outcomes = race(INGEST, [((TOPIC, kafka_broker), {}) for _ in range(3)])
    assert all(status == "ok" for status, _ in outcomes), outcomes
    assert_every_message_landed_once(lakehouse_root, sent)

    sent = merge_sent(sent, produce_mix(kafka_broker, rng, 600, 400))
    assert run_and_kill(INGEST, (TOPIC, kafka_broker), failpoint="kafka.after_quarantine_commit") == -9
    sent = merge_sent(sent, produce_mix(kafka_broker, rng, 1000, 100))
    ingest_topic(TOPIC, kafka_broker, max_messages=150)
    outcomes = race(INGEST, [((TOPIC, kafka_broker), {"max_messages": rng.choice([100, 1000])}) for _ in range(2)])
    assert all(status == "ok" for status, _ in outcomes), outcomes
    ingest_topic(TOPIC, kafka_broker)
    assert_every_message_landed_once(lakehouse_root, sent)
    again = ingest_topic(TOPIC, kafka_broker)
    assert (again["rows_inserted"], again["rows_quarantined"]) == (0, 0)


def test_the_bronze_check_catches_a_message_quarantined_twice_or_in_both_tables(lakehouse_root, kafka_broker):
    producer = Producer(kafka_broker)
    producer.produce(TOPIC, key="a", value=json.dumps({"n": 1}), partition=0)
    producer.produce(TOPIC, key="b", value=b"not json", partition=0)
    producer.flush(30)
    ingest_topic(TOPIC, kafka_broker)
    assert check_topic_bronze(TOPIC) == {"topic": TOPIC, "rows": 1, "quarantined": 1}
    quarantine = str(lakehouse_root / "quarantine" / TOPIC)
    delta.append(quarantine, DeltaTable(quarantine).to_pyarrow_table())  # the old bug: quarantined again
    with pytest.raises(LakehouseError, match="1 message.*landed twice"):
        check_topic_bronze(TOPIC)


TRICKY_VALUES = [  # (value, lands in bronze): json.loads decides, whatever the bulk check thinks
    (b'{"n": 1}', True), (b"42", True), (b'"text"', True), (b"null", True), (b"[1, 2]", True),
    (b'{"a": NaN}', True), (b'{"a": "\\ud800"}', True), (b' {"a": 1} ', True), (b'{"a": 1e400}', True),
    (b'{"a": 1}{"b": 2}', False), (b'{"a": 1,}', False), (b'{"a": "x\ty"}', False), (b"", False), (b" ", False),
    (b'{"a": 01}', False), (b"{'a': 1}", False), (b'{"a": 1}\x00', False), (b"\xef\xbb\xbf{}", False),
    (b"\xff\xfe not utf-8", False), (b'{"a":' * 3000 + b"1" + b"}" * 3000, False),
]


def test_a_batch_mixing_good_and_bad_json_quarantines_exactly_the_bad_ones_in_order(lakehouse_root, kafka_broker):
    """One consume batch, one partition: every bad message lands in quarantine with its reason
    (a value nested too deep to parse too, which used to crash the run), every other one in
    bronze with its exact text, offsets and order kept."""
    producer = Producer(kafka_broker)
    expected_good, expected_bad = [], []
    for i, (value, good) in enumerate(TRICKY_VALUES * 3):
        producer.produce(TOPIC, key=f"k{i}", value=value, partition=1)
        (expected_good if good else expected_bad).append((i, f"k{i}", value))
    producer.produce(TOPIC, key="gone", value=None, partition=1)  # a tombstone after them
    producer.flush(30)
    result = ingest_topic(TOPIC, kafka_broker)
    assert (result["rows_inserted"], result["rows_quarantined"]) == (len(expected_good) + 1, len(expected_bad))
    bronze = DeltaTable(str(lakehouse_root / "bronze" / TOPIC)).to_pyarrow_table().sort_by("offset").to_pylist()
    assert [(r["offset"], r["key"], r["payload"]) for r in bronze] == (
        [(i, k, v.decode()) for i, k, v in expected_good] + [(len(TRICKY_VALUES) * 3, "gone", None)])
    assert [r["tombstone"] for r in bronze] == [False] * len(expected_good) + [True]
    bad = DeltaTable(str(lakehouse_root / "quarantine" / TOPIC)).to_pyarrow_table().sort_by("offset").to_pylist()
    assert [(r["offset"], r["key"], r["_raw"]) for r in bad] == expected_bad
    reasons = {r["_raw"]: r["_reason"] for r in bad}
    assert reasons[b"\xff\xfe not utf-8"].startswith("not UTF-8: ")
    assert reasons[TRICKY_VALUES[-1][0]] == "not JSON: nested deeper than 500 levels"
    assert all(reasons[v].startswith("not JSON: ") for v, good in TRICKY_VALUES[9:-2])


def test_bulk_decode_gives_the_row_by_row_verdict_and_reason_for_every_message():
    """The columnar decode (UTF-8 per chunk, JSON by msgspec per chunk) against json.loads row by
    row over valid messages and thousands of seeded corruptions of them, across chunk borders."""
    import random

    from include.lakehouse.ingest import kafka

    rng = random.Random(18)
    values: list[bytes | None] = []
    for i in range(40_000):
        text = bytearray(json.dumps({"n": i, "s": "caf\u00e9 \\ \" x", "l": [1, 2.5, None, True]}).encode())
        if i % 7 == 0:  # delete, insert or replace one byte somewhere
            at = rng.randrange(len(text))
            what = rng.choice([b"", b"{", b"}", b",", b'"', b"\\", b"\n", b"\x00", b"\xff", b"]", b"e", b" "])
            text[at:at + rng.randint(0, 1)] = what
        values.append(bytes(text) if i % 1000 else None)
    values += [v for v, _ in TRICKY_VALUES]
    keys = [None] * len(values)
    _, _, payload, reasons = kafka._columns(keys, values)
    row_by_row = [kafka._decode(v) for v in values]
    assert reasons == {i: reason for i, (_, reason) in enumerate(row_by_row) if reason}
    assert 4000 < len(reasons) < 6000  # the corruptions did produce bad messages
    good = [i for i in range(len(values)) if i not in reasons]
    assert [payload[i].as_py() for i in good] == [row_by_row[i][0] for i in good]


@pytest.mark.parametrize("limit", [800, 1000, 20_000])
def test_a_deep_value_gets_the_same_verdict_whatever_the_recursion_limit(limit):
    """Deep nesting is decided by a fixed rule (MAX_JSON_DEPTH), not by the interpreter's
    recursion limit, which other libraries in a task process raise or lower: the same message
    must never land in bronze in one process and in quarantine in another (it did, in a suite
    where an earlier import had raised the limit)."""
    import sys

    from include.lakehouse.ingest import kafka

    ok = b"[" * 450 + b'"[[[{{"' + b"]" * 450                 # 450 levels (brackets in a string do not count)
    too_deep = [b'{"a":' * n + b"1" + b"}" * n for n in (501, 3000)]  # valid JSON, deeper than the rule
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        assert kafka._decode(ok) == (ok.decode(), None)
        assert [kafka._decode(v) for v in too_deep] == [(None, "not JSON: nested deeper than 500 levels")] * 2
        _, _, payload, reasons = kafka._columns([b"k"] * 3, [ok, *too_deep])
        assert payload.to_pylist()[0] == ok.decode() and reasons == {1: kafka.TOO_DEEP, 2: kafka.TOO_DEEP}
    finally:
        sys.setrecursionlimit(before)


@pytest.mark.parametrize("limit", [800, 1000, 20_000])
def test_the_depth_rule_holds_at_its_boundary_where_only_long_texts_have_their_brackets_counted(limit):
    """Only a text at least twice MAX_JSON_DEPTH long can nest deeper than it (every level opens
    and closes), so the bulk decode counts brackets on those alone: the shortest text one level
    too deep is still quarantined, the deepest one that fits in fewer bytes is not, and brackets
    inside strings never count, whatever the recursion limit."""
    import sys

    from include.lakehouse.ingest import kafka

    depth = kafka.MAX_JSON_DEPTH
    deepest_ok = b"[" * depth + b"]" * depth                       # 1000 bytes, 500 levels
    shortest_too_deep = b"[" * (depth + 1) + b"]" * (depth + 1)    # 1002 bytes, 501 levels
    padded_too_deep = b" " * 3000 + b'{"a":' * (depth + 1) + b"1" + b"}" * (depth + 1)
    brackets_in_a_string = json.dumps({"s": "{[" * 2000}).encode()  # 4000 brackets, 1 level
    short_brackets_in_a_string = json.dumps({"s": "{" * 900}).encode()  # 900 brackets, under 1002 bytes
    values = [deepest_ok, shortest_too_deep, padded_too_deep, brackets_in_a_string, short_brackets_in_a_string]
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        _, _, payload, reasons = kafka._columns([b"k"] * len(values), values)
        assert reasons == {1: kafka.TOO_DEEP, 2: kafka.TOO_DEEP}
        assert reasons == {i: r for i, (_, r) in enumerate(map(kafka._decode, values)) if r}  # json.loads' verdicts
        assert [payload[i].as_py() for i in (0, 3, 4)] == [values[i].decode() for i in (0, 3, 4)]
    finally:
        sys.setrecursionlimit(before)
    chunk = pa.array(values, pa.binary())
    assert kafka._maybe_too_deep(chunk, values) == [1, 2, 3]  # counted: the long ones with many brackets only
