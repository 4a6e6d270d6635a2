"""CDC apply: newest-wins per key, out-of-order and duplicate events, deletes and tombstones."""

from __future__ import annotations

import pyarrow as pa
import pytest
from deltalake import DeltaTable

import include.lakehouse.cdc.apply as cdc
from include.lakehouse.errors import KeyColumnError
from include.lakehouse.maintenance.operations import read_changes


def events(*rows):
    return pa.table({
        "id": [r[0] for r in rows], "name": [r[1] for r in rows],
        "op": [r[2] for r in rows], "lsn": pa.array([r[3] for r in rows], pa.int64()),
    })


def state(uri):
    table = DeltaTable(uri).to_pyarrow_table().sort_by("id")
    return {r["id"]: (r["name"], r["_cdc_sequence"]) for r in table.to_pylist()}


def test_batch_keeps_only_newest_change_per_key(tmp_path):
    uri = str(tmp_path / "silver")
    result = cdc.apply_cdc(uri, events((1, "a", "c", 10), (1, "a2", "u", 12), (1, "a1", "u", 11), (2, "b", "r", 5)),
                           keys=["id"], sequence_column="lsn")
    assert state(uri) == {1: ("a2", 12), 2: ("b", 5)}
    assert result.rows_inserted == 2 and result.rows_skipped == 2


def test_out_of_order_older_event_never_overwrites_newer_state(tmp_path):
    uri = str(tmp_path / "silver")
    cdc.apply_cdc(uri, events((1, "new", "u", 20)), keys=["id"], sequence_column="lsn")
    late = cdc.apply_cdc(uri, events((1, "old", "u", 15), (2, "b", "c", 16)), keys=["id"], sequence_column="lsn")
    assert state(uri) == {1: ("new", 20), 2: ("b", 16)}
    assert (late.rows_inserted, late.rows_updated, late.rows_skipped) == (1, 0, 1)


def test_redelivered_batch_changes_nothing(tmp_path):
    uri = str(tmp_path / "silver")
    batch = events((1, "a", "c", 1), (2, "b", "c", 2), (2, "b2", "u", 3))
    cdc.apply_cdc(uri, batch, keys=["id"], sequence_column="lsn")
    cdc.apply_cdc(uri, events((3, "c", "c", 4)), keys=["id"], sequence_column="lsn")
    version = DeltaTable(uri).version()
    again = cdc.apply_cdc(uri, batch, keys=["id"], sequence_column="lsn")
    assert again.rows_inserted == again.rows_updated == again.rows_deleted == 0
    assert state(uri) == {1: ("a", 1), 2: ("b2", 3), 3: ("c", 4)}
    assert DeltaTable(uri).to_pyarrow_table().num_rows == 3 and again.version >= version


def test_delete_is_hard_and_a_late_older_update_cannot_resurrect_it(tmp_path):
    uri = str(tmp_path / "silver")
    cdc.apply_cdc(uri, events((1, "a", "c", 1), (2, "b", "c", 2)), keys=["id"], sequence_column="lsn")
    deleted = cdc.apply_cdc(uri, events((1, None, "d", 9)), keys=["id"], sequence_column="lsn")
    assert deleted.rows_deleted == 1 and state(uri) == {2: ("b", 2)}
    stale = cdc.apply_cdc(uri, events((1, "zombie", "u", 5)), keys=["id"], sequence_column="lsn")
    assert stale.rows_inserted == 0 and state(uri) == {2: ("b", 2)}
    reborn = cdc.apply_cdc(uri, events((1, "back", "c", 12)), keys=["id"], sequence_column="lsn")
    assert reborn.rows_inserted == 1 and state(uri) == {1: ("back", 12), 2: ("b", 2)}


def test_delete_visible_in_change_data_feed(tmp_path):
    from deltalake import write_deltalake

    uri = str(tmp_path / "silver")
    write_deltalake(uri, pa.table({"id": pa.array([], pa.int64()), "name": pa.array([], pa.string()),
                                   "_cdc_sequence": pa.array([], pa.int64())}),
                    configuration={"delta.enableChangeDataFeed": "true"})
    cdc.apply_cdc(uri, events((1, "a", "c", 1)), keys=["id"], sequence_column="lsn")
    cdc.apply_cdc(uri, events((1, None, "d", 2)), keys=["id"], sequence_column="lsn")
    feed = read_changes(uri, starting_version=0).to_pylist()
    assert {(r["id"], r["_change_type"]) for r in feed} >= {(1, "insert"), (1, "delete")}


def test_bad_change_batches_are_refused_with_the_reason(tmp_path):
    uri = str(tmp_path / "silver")
    with pytest.raises(KeyColumnError, match="sequence column 'scn'"):
        cdc.apply_cdc(uri, events((1, "a", "c", 1)), keys=["id"], sequence_column="scn")
    with pytest.raises(KeyColumnError, match="unknown op"):
        cdc.apply_cdc(uri, events((1, "a", "x", 1)), keys=["id"], sequence_column="lsn")
    assert not DeltaTable.is_deltatable(uri)


def test_a_delete_survives_a_kill_between_its_tombstone_and_the_merge(tmp_path):
    """Killed after the tombstone is written and before the merge: the rerun still deletes
    (the delete's sequence equals its own tombstone's; it is not "behind" it)."""
    from tests.processes import run_and_kill

    uri = str(tmp_path / "silver")
    cdc.apply_cdc(uri, events((1, "a", "c", 1), (2, "b", "c", 2)), keys=["id"], sequence_column="lsn")
    delete = events((1, None, "d", 9))
    code = run_and_kill("include.lakehouse.cdc.apply.apply_cdc", (uri, delete), {"keys": ["id"], "sequence_column": "lsn"},
                        failpoint="cdc.after_tombstones")
    assert code == -9
    assert state(uri) == {1: ("a", 1), 2: ("b", 2)}  # killed before the merge
    assert DeltaTable(cdc.tombstone_uri(uri)).to_pyarrow_table().column("_cdc_sequence").to_pylist() == [9]
    rerun = cdc.apply_cdc(uri, delete, keys=["id"], sequence_column="lsn")
    assert rerun.rows_deleted == 1 and state(uri) == {2: ("b", 2)}
    assert cdc.apply_cdc(uri, events((1, "zombie", "u", 5)), keys=["id"], sequence_column="lsn").rows_inserted == 0


def test_a_batch_that_changes_nothing_still_records_its_position(tmp_path):
    uri = str(tmp_path / "silver")
    cdc.apply_cdc(uri, events((1, "a", "c", 5)), keys=["id"], sequence_column="lsn", transactions={"src": 1})
    stale = cdc.apply_cdc(uri, events((1, "old", "u", 3), (1, "a", "c", 5)), keys=["id"], sequence_column="lsn",
                          transactions={"src": 2})
    assert stale.rows_skipped == 2 and state(uri) == {1: ("a", 5)}
    assert DeltaTable(uri).transaction_version("src") == 2


def test_tombstones_keep_every_delete_with_its_source_time(tmp_path):
    from datetime import datetime, timezone

    uri = str(tmp_path / "silver")
    at = [datetime(2024, 1, d, tzinfo=timezone.utc) for d in (1, 2, 3, 4)]
    batch = events((1, "a", "c", 1), (1, None, "d", 2)).append_column("ts", pa.array(at[:2], pa.timestamp("us", tz="UTC")))
    cdc.apply_cdc(uri, batch, keys=["id"], sequence_column="lsn", source_time_column="ts")
    later = events((1, "b", "c", 3), (1, None, "d", 4)).append_column("ts", pa.array(at[2:], pa.timestamp("us", tz="UTC")))
    cdc.apply_cdc(uri, later.slice(0, 1), keys=["id"], sequence_column="lsn", source_time_column="ts")
    cdc.apply_cdc(uri, later.slice(1), keys=["id"], sequence_column="lsn", source_time_column="ts")
    cdc.apply_cdc(uri, later.slice(1), keys=["id"], sequence_column="lsn", source_time_column="ts")  # redelivered
    stones = cdc.tombstones(uri).sort_by("_cdc_sequence").to_pylist()
    assert [(s["id"], s["_cdc_sequence"], s["ts"].day) for s in stones] == [(1, 2, 2), (1, 4, 4)]


def merge_batches_while_compacting(role: str, uri: str, batches: int) -> int:
    """One side of a race (run in a child process): CDC merges (new keys, which add small
    files, then updates across all files), or compactions of those files until they are through."""
    from tests.processes import compact_until

    if role == "compact":
        compact_until(uri, "src", batches - 1)
        return batches
    for i in range(batches):
        inserts = [(1000 + 10 * i + k, "new", "c", 100 + i) for k in range(10)]
        updates = [(k, f"v{i}", "u", 100 + i) for k in range(0, 40, 3)]
        cdc.apply_cdc(uri, events(*(inserts if i % 2 == 0 else updates)), keys=["id"], sequence_column="lsn",
                      transactions={"src": i})
    return batches


def test_cdc_merges_racing_a_compaction_all_commit(tmp_path):
    from tests.processes import race

    uri = str(tmp_path / "silver")
    for k in range(0, 40, 5):  # many small files for the compaction to rewrite
        cdc.apply_cdc(uri, events(*[(i, "new", "c", 1) for i in range(k, k + 5)]), keys=["id"], sequence_column="lsn")
    outcomes = race("tests.cdc.test_apply.merge_batches_while_compacting",
                    [(("merge", uri, 20), {}), (("compact", uri, 20), {})])
    assert outcomes == [("ok", 20), ("ok", 20)], outcomes
    rows = state(uri)
    assert len(rows) == 40 + 100 and DeltaTable(uri).transaction_version("src") == 19
    assert all(rows[k] == ("v19", 119) for k in range(0, 40, 3))
