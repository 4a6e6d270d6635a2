"""Append (idempotent), partition overwrite, merge-upsert and schema evolution on real Delta tables."""

from __future__ import annotations

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from include.lakehouse.errors import KeyColumnError, SchemaEvolutionError, UnknownTableError
from include.lakehouse.tables import delta


def rows(table_uri):
    return DeltaTable(str(table_uri)).to_pyarrow_table().sort_by("id").to_pylist()


def test_append_with_same_app_transaction_is_written_once(tmp_path):
    uri = str(tmp_path / "t")
    batch = pa.table({"id": [1, 2, 3], "v": ["a", "b", "c"]})
    first = delta.append(uri, batch, app_id="ingest.orders.2024-01-01", app_version=1)
    retry = delta.append(uri, batch, app_id="ingest.orders.2024-01-01", app_version=1)
    assert first.rows_inserted == 3 and not first.skipped
    assert retry.skipped and retry.rows_inserted == 0 and retry.version == first.version
    assert DeltaTable(uri).count() == 3
    nxt = delta.append(uri, batch, app_id="ingest.orders.2024-01-02", app_version=1)
    assert nxt.rows_inserted == 3 and DeltaTable(uri).count() == 6
    assert DeltaTable(uri).transaction_version("ingest.orders.2024-01-01") == 1


def test_append_stream_batches_skip_older_versions(tmp_path):
    uri = str(tmp_path / "t")
    delta.append(uri, pa.table({"id": [1]}), app_id="topic-0", app_version=5)
    assert delta.append(uri, pa.table({"id": [2]}), app_id="topic-0", app_version=4).skipped
    assert not delta.append(uri, pa.table({"id": [3]}), app_id="topic-0", app_version=6).skipped
    assert [r["id"] for r in rows(uri)] == [1, 3]


def test_overwrite_partition_replaces_only_that_partition(tmp_path):
    uri = str(tmp_path / "t")
    day1 = pa.table({"id": [1, 2], "day": ["2024-01-01"] * 2})
    day2 = pa.table({"id": [3], "day": ["2024-01-02"]})
    delta.overwrite_partition(uri, day1, partition={"day": "2024-01-01"}, partition_by=["day"])
    delta.overwrite_partition(uri, day2, partition={"day": "2024-01-02"})
    rerun = delta.overwrite_partition(uri, pa.table({"id": [1, 9], "day": ["2024-01-01"] * 2}),
                                      partition={"day": "2024-01-01"})
    assert rerun.rows_deleted == 2 and rerun.rows_inserted == 2
    assert [(r["id"], r["day"]) for r in rows(uri)] == [(1, "2024-01-01"), (3, "2024-01-02"), (9, "2024-01-01")]
    assert DeltaTable(uri).metadata().partition_columns == ["day"]


def test_overwrite_partition_refuses_rows_outside_the_partition(tmp_path):
    uri = str(tmp_path / "t")
    delta.overwrite_partition(uri, pa.table({"id": [1], "day": ["d1"]}), partition={"day": "d1"}, partition_by=["day"])
    version = DeltaTable(uri).version()
    with pytest.raises(Exception):
        delta.overwrite_partition(uri, pa.table({"id": [2], "day": ["d2"]}), partition={"day": "d1"})
    assert DeltaTable(uri).version() == version and rows(uri) == [{"id": 1, "day": "d1"}]


def test_merge_upsert_counts_and_delete_condition(tmp_path):
    uri = str(tmp_path / "t")
    delta.merge_upsert(uri, pa.table({"id": [1, 2, 3], "v": ["a", "b", "c"]}), keys=["id"])
    result = delta.merge_upsert(
        uri,
        pa.table({"id": [2, 3, 4, 5], "v": ["B", "gone", "d", "never"], "deleted": [False, True, False, True]}),
        keys=["id"], delete_when="s.deleted = true",
    )
    assert (result.rows_inserted, result.rows_updated, result.rows_deleted) == (1, 1, 1)
    assert result.rows_skipped == 1  # id 5: a delete for a key that never existed
    assert [(r["id"], r["v"]) for r in rows(uri)] == [(1, "a"), (2, "B"), (4, "d")]
    again = delta.merge_upsert(uri, pa.table({"id": [2], "v": ["B"], "deleted": [False]}), keys=["id"],
                               update_when="s.v <> t.v")
    assert again.rows_updated == 0


def test_merge_rejects_wrong_key_and_duplicate_keys(tmp_path):
    uri = str(tmp_path / "t")
    delta.merge_upsert(uri, pa.table({"id": [1], "v": ["a"]}), keys=["id"])
    with pytest.raises(KeyColumnError, match="customer_id"):
        delta.merge_upsert(uri, pa.table({"id": [1], "v": ["a"]}), keys=["customer_id"])
    with pytest.raises(KeyColumnError, match="duplicate"):
        delta.merge_upsert(uri, pa.table({"id": [1, 1], "v": ["a", "b"]}), keys=["id"])
    assert rows(uri) == [{"id": 1, "v": "a"}]


def test_schema_evolves_with_new_nullable_column_and_widening(tmp_path):
    uri = str(tmp_path / "t")
    delta.append(uri, pa.table({"id": pa.array([1], pa.int64()), "v": ["a"]}))
    delta.append(uri, pa.table({"id": pa.array([2], pa.int32()), "v": ["b"], "email": ["x@y.z"]}))
    result = rows(uri)
    assert result == [{"id": 1, "v": "a", "email": None}, {"id": 2, "v": "b", "email": "x@y.z"}]
    assert DeltaTable(uri).schema().to_arrow().field("id").type == pa.int64()


def test_incompatible_type_change_is_a_clear_error_and_writes_nothing(tmp_path):
    uri = str(tmp_path / "t")
    delta.append(uri, pa.table({"id": [1], "amount": [10]}))
    with pytest.raises(SchemaEvolutionError, match=r"column 'amount' is long in the table but string"):
        delta.append(uri, pa.table({"id": [2], "amount": ["ten"]}))
    assert DeltaTable(uri).version() == 0


def test_registry_names_resolve_under_lakehouse_root_and_unknown_names_fail(lakehouse_root):
    result = delta.append("bronze/smoke_orders", pa.table({
        "order_id": [1], "order_date": ["2024-01-01"], "amount": [1.5]}))
    assert result.table == f"{lakehouse_root}/bronze/smoke_orders"
    assert DeltaTable(result.table).metadata().partition_columns == ["order_date"]
    with pytest.raises(UnknownTableError, match="silver/custmers.*tables.yaml"):
        delta.append("silver/custmers", pa.table({"id": [1]}))


def test_merge_into_a_new_table_does_not_insert_rows_marked_for_deletion(tmp_path):
    uri = str(tmp_path / "t")
    result = delta.merge_upsert(uri, pa.table({"id": [1, 2], "status": ["s.ok", "gone"], "deleted": [False, True]}),
                                keys=["id"], delete_when="s.deleted = true")
    assert result.rows_inserted == 1 and result.rows_skipped == 1
    assert rows(uri) == [{"id": 1, "status": "s.ok", "deleted": False}]


def test_concurrent_exactly_once_appends_never_duplicate(lakehouse_root):
    """Four processes append the same unit of work at once (a stuck try and its retry, a manual
    run beside a scheduled one): exactly one commit holds the rows, the others are no-ops."""
    from tests.processes import race

    uri = str(lakehouse_root / "bronze" / "race")
    rows = [{"id": i} for i in range(100)]
    outcomes = race("include.lakehouse.tables.delta.append",
                    [((uri, rows), {"app_id": "ingest.race.unit-1"}) for _ in range(4)])
    assert all(status == "ok" for status, _ in outcomes), outcomes
    assert DeltaTable(uri).to_pyarrow_table().num_rows == 100
    assert sum(not r.skipped for _, r in outcomes) == 1


def test_append_refuses_a_stale_plan(lakehouse_root):
    """A batch planned from positions another writer has moved is refused, not written."""
    from include.lakehouse.errors import ConcurrentWriteError

    uri = str(lakehouse_root / "bronze" / "positions")
    delta.append(uri, [{"id": 1}], transactions={"kafka.c.t.0": 1}, expected={"kafka.c.t.0": None})
    with pytest.raises(ConcurrentWriteError, match="re-plan"):
        delta.append(uri, [{"id": 1}], transactions={"kafka.c.t.0": 1}, expected={"kafka.c.t.0": None})
    assert DeltaTable(uri).to_pyarrow_table().num_rows == 1


def test_first_merge_with_deletes_keeps_utc_timestamps(lakehouse_root):
    """The first merge into a new table with `delete_when` filters its rows through DuckDB, which
    turned UTC timestamps into "Etc/UTC" that Delta refuses (the table was never created)."""
    from datetime import datetime, timezone

    import pyarrow as pa

    from include.lakehouse.tables.delta import merge_upsert, open_table

    rows = pa.table({"order_id": pa.array([1, 2], pa.int64()), "_deleted": [False, True],
                     "placed_at": pa.array([datetime(2024, 1, 1, tzinfo=timezone.utc)] * 2, pa.timestamp("us", tz="UTC"))})
    merge_upsert("silver/orders", rows, keys=["order_id"], delete_when="s._deleted = true")
    assert open_table("silver/orders").to_pyarrow_table().column("order_id").to_pylist() == [1]


def test_commit_log_counts_the_files_each_commit_added_and_tolerates_a_cleaned_log(tmp_path):
    uri = str(tmp_path / "t")
    for i in range(3):
        delta.append(uri, pa.table({"id": list(range(10 * i, 10 * i + 10)), "v": ["x" * 50] * 10}))
    sizes = sorted(DeltaTable(uri).get_add_actions(flatten=True)["size_bytes"].to_pylist())
    delta.merge_upsert(uri, pa.table({"id": [1, 100], "v": ["y", "z"]}), keys=["id"])
    DeltaTable(uri).optimize.compact()  # a rewrite: dataChange=false, adds no data
    log = delta.commit_log(DeltaTable(uri))
    assert [c["version"] for c in log] == [4, 3, 2, 1, 0]
    assert [c["operation"] for c in log] == ["OPTIMIZE", "MERGE", "WRITE", "WRITE", "WRITE"]
    assert sorted(c["bytes_added"] for c in log[2:]) == sizes and log[0]["bytes_added"] == log[0]["files_added"] == 0
    assert log[1]["files_added"] == 1 and log[1]["bytes_added"] > 0  # the merge's rewritten file
    assert log[1]["operation_metrics"]["num_target_rows_inserted"] == 1
    assert all(isinstance(c["timestamp"], int) for c in log)
    assert [c["version"] for c in delta.commit_log(DeltaTable(uri), 2)] == [4, 3]

    # log cleanup after a checkpoint removed the oldest entries: the rest is still read
    DeltaTable(uri).create_checkpoint()
    for version in (0, 1):
        (tmp_path / "t" / "_delta_log" / f"{version:020d}.json").unlink()
    assert [c["version"] for c in delta.commit_log(DeltaTable(uri), workers=2)] == [4, 3, 2]
