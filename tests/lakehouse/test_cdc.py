"""CDC apply: newest-wins per key, out-of-order and duplicate events, deletes and tombstones."""

from __future__ import annotations

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from include.lakehouse import cdc
from include.lakehouse.errors import KeyColumnError
from include.lakehouse.maintenance import read_changes


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
