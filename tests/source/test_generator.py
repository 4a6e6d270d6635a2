"""The synthetic shop: deterministic, consistent change streams, landing files with known defects."""

from __future__ import annotations

import json

import pyarrow.csv as pv
import pyarrow.parquet as pq

from include.lakehouse.source.generator import ShopSource


def test_same_seed_same_data_and_other_seed_differs():
    a, b, c = ShopSource(seed=1, scale=0.1), ShopSource(seed=1, scale=0.1), ShopSource(seed=2, scale=0.1)
    assert a.orders("2024-01-05").equals(b.orders("2024-01-05"))
    assert not a.orders("2024-01-05").equals(c.orders("2024-01-05"))
    assert a.customer_changes("2024-01-04") == b.customer_changes("2024-01-04")


def test_debezium_stream_replays_to_the_customer_state():
    shop = ShopSource(scale=0.1)
    replica: dict[int, dict] = {}
    lsns = []
    ops = set()
    for day in ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]:
        for event in shop.customer_changes(day):
            ops.add(event["op"])
            lsns.append(event["source"]["lsn"])
            if event["op"] == "d":
                assert event["after"] is None and event["before"]["customer_id"] in replica
                del replica[event["before"]["customer_id"]]
            else:
                if event["op"] == "u":
                    assert replica[event["after"]["customer_id"]] == event["before"]
                replica[event["after"]["customer_id"]] = event["after"]
    assert ops == {"r", "c", "u", "d"}
    assert lsns == sorted(lsns) and len(set(lsns)) == len(lsns)
    expected = {r["customer_id"]: r["city"] for r in shop.customers("2024-01-04").to_pylist()}
    assert {k: v["city"] for k, v in replica.items()} == expected


def test_landing_files_carry_the_announced_share_of_malformed_rows(tmp_path):
    shop = ShopSource(scale=0.5)
    total = shop.orders("2024-01-02").num_rows
    path, bad = shop.write_landing_file(tmp_path, "2024-01-02", "json", malformed_share=0.05)
    lines = path.read_text().splitlines()
    broken = 0
    for line in lines:
        try:
            json.loads(line)
        except json.JSONDecodeError:
            broken += 1
    assert len(lines) == total and broken == bad == round(total * 0.05)
    csv_path, csv_bad = shop.write_landing_file(tmp_path, "2024-01-02", "csv", malformed_share=0.05)
    table = pv.read_csv(csv_path, convert_options=pv.ConvertOptions(column_types={"amount": "string", "order_id": "string", "order_date": "string"}))
    assert table.num_rows == total and csv_bad == bad
    pq_path, pq_bad = shop.write_landing_file(tmp_path, "2024-01-02", "parquet", malformed_share=0.05)
    rows = pq.read_table(pq_path).to_pylist()
    assert sum(1 for r in rows if r["order_id"] is None or r["amount"] < 0) == pq_bad


def test_order_events_follow_the_order_lifecycle():
    shop = ShopSource(scale=0.1)
    events = shop.order_events("2024-01-03")
    by_order: dict[int, list[str]] = {}
    for e in events:
        by_order.setdefault(e["order_id"], []).append(e["event_type"])
    assert set(by_order) == set(shop.orders("2024-01-03").column("order_id").to_pylist())
    assert all(kinds[0] == "order_placed" for kinds in by_order.values())


def test_order_and_product_envelopes_replay_to_the_source_tables():
    shop = ShopSource(scale=0.1)
    orders = {}
    for event in shop.order_changes("2024-01-02"):
        assert event["source"]["table"] == "orders"
        if event["op"] == "u":
            assert orders[event["after"]["order_id"]] == event["before"]
        orders[event["after"]["order_id"]] = event["after"]
    expected = {r["order_id"]: r["status"] for r in shop.orders("2024-01-02").to_pylist()}
    assert {k: v["status"] for k, v in orders.items()} == expected
    snapshot = shop.product_changes("2024-01-01")
    assert {e["op"] for e in snapshot} == {"r"} and len(snapshot) == shop.products().num_rows
    updates = shop.product_changes("2024-01-02")
    assert updates and all(e["op"] == "u" and e["before"]["price"] != e["after"]["price"] for e in updates)


def test_a_landing_file_appears_whole_or_not_at_all_and_ingest_takes_it_at_once(lakehouse_root):
    """The shop writes under a `.tmp` name and renames: killed before the rename it leaves only
    the temp file, which ingest never reads; a finished delivery is loaded by a run right after."""
    from deltalake import DeltaTable

    from include.lakehouse.ingest.files import ingest_new_files, landing_dir
    from include.lakehouse.source.landing import deliver_orders_file
    from tests.processes import run_and_kill

    exit_code = run_and_kill("include.lakehouse.source.landing.deliver_orders_file", ("2024-01-02",),
                             {"scale": 0.1}, failpoint="shop.landing_file_written")
    assert exit_code == -9
    [leftover] = list(landing_dir("orders").iterdir())
    assert leftover.name.startswith("orders_2024-01-02.") and leftover.name.endswith(".tmp")
    assert [r["status"] for r in ingest_new_files("orders")] == ["waiting"]
    assert not (lakehouse_root / "bronze" / "orders").exists()

    delivered = deliver_orders_file("2024-01-02", scale=0.1)
    [loaded] = [r for r in ingest_new_files("orders") if r["status"] == "loaded"]  # no settle wait
    expected = ShopSource(scale=0.1).orders("2024-01-02").num_rows
    assert loaded["file"] == delivered["file"]
    assert loaded["rows_inserted"] + loaded["rows_quarantined"] == expected
    assert DeltaTable(str(lakehouse_root / "bronze" / "orders")).to_pyarrow_table().num_rows == loaded["rows_inserted"]
