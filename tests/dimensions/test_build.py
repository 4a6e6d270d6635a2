"""Silver's change feed -> gold type 2 dimensions (dimensions/build.py), fed through the real CDC
flow from Debezium envelopes in bronze."""

from __future__ import annotations

import json

import pytest
from deltalake import DeltaTable

from include.lakehouse.cdc.flow import apply_bronze_changes
from include.lakehouse.dimensions.build import build_dimension
from include.lakehouse.source.generator import debezium_envelope
from include.lakehouse.tables.registry import get_table
from tests.cdc.test_flow import customer, envelope, land, silver_rows, ts


def test_dim_customer_matches_a_dbt_timestamp_snapshot_including_a_late_arrival(lakehouse_root):
    land([envelope("c", {"city": "Oslo", "updated_at": ts(1)}, 1)])
    apply_bronze_changes("customers"), build_dimension("dim_customer")
    land([envelope("u", {"city": "Bergen", "updated_at": ts(10)}, 3)])
    apply_bronze_changes("customers"), build_dimension("dim_customer")
    # a correction committed later in the source (newer LSN) but effective on day 5: it
    # arrives late in time and is slotted into history, splitting Oslo's interval
    land([envelope("u", {"city": "Tromso", "updated_at": ts(5)}, 4)])
    apply_bronze_changes("customers")
    late = build_dimension("dim_customer")
    assert late["late"] == 1 and late["dimension"] == "dim_customer"  # what the DAG reports on
    history = sorted(DeltaTable(get_table("gold/dim_customer").uri).to_pyarrow_table().to_pylist(),
                     key=lambda r: r["valid_from"])
    # what a dbt snapshot (strategy: timestamp, updated_at) records for these versions:
    snapshot = [("Oslo", ts(1), ts(5)), ("Tromso", ts(5), ts(10)), ("Bergen", ts(10), None)]
    assert [(r["city"], r["valid_from"], r["valid_to"]) for r in history] == snapshot
    assert [r["is_current"] for r in history] == [False, False, True]
    assert len({r["customer_sk"] for r in history}) == 3 and all(r["row_hash"] for r in history)
    version = DeltaTable(get_table("gold/dim_customer").uri).version()
    assert build_dimension("dim_customer")["skipped"]
    assert DeltaTable(get_table("gold/dim_customer").uri).version() == version


@pytest.mark.parametrize("gold_between", [True, False])
def test_a_delete_closes_its_version_at_the_source_delete_time_and_a_re_created_key_is_current(lakehouse_root,
                                                                                                gold_between):
    """Deleted on day 2 and re-created on day 3 in the source; CDC applies them to silver much
    later (lag) and in separate batches; the dimension is built after them (and, or not,
    between the deletes and the re-creates)."""
    keys = range(1, 101)
    land([json.dumps(debezium_envelope("customers", "c", None, customer(k, "Oslo", ts(1)), ts(1), k)) for k in keys])
    apply_bronze_changes("customers")
    build_dimension("dim_customer")
    land([json.dumps(debezium_envelope("customers", "d", customer(k, "Oslo", ts(1)), None, ts(2, k % 24), 1000 + k))
          for k in keys])
    apply_bronze_changes("customers")
    if gold_between:  # the deletes reach gold before the re-creates reach silver
        build_dimension("dim_customer")
    land([json.dumps(debezium_envelope("customers", "c", None, customer(k, "Rome", ts(3)), ts(3), 2000 + k))
          for k in keys if k % 2] + [json.dumps(debezium_envelope("customers", "c", None, customer(200, "Lima", ts(4)),
                                                                    ts(4), 3000))])
    apply_bronze_changes("customers")
    land([json.dumps(debezium_envelope("customers", "c", None, customer(k, "Rome", ts(3)), ts(3), 2000 + k))
          for k in keys if not k % 2])
    apply_bronze_changes("customers")
    build_dimension("dim_customer")
    dim = DeltaTable(get_table("gold/dim_customer").uri).to_pyarrow_table().to_pylist()
    current = {r["customer_id"]: (r["city"], r["valid_from"]) for r in dim if r["is_current"]}
    assert current == {k: (v["city"], v["updated_at"]) for k, v in silver_rows().items()}
    assert len(current) == 101
    for k in keys:
        history = sorted(((r["city"], r["valid_from"], r["valid_to"], r["is_deleted"]) for r in dim
                          if r["customer_id"] == k), key=lambda v: v[1])
        assert history == [("Oslo", ts(1), ts(2, k % 24), True), ("Rome", ts(3), None, False)], k
