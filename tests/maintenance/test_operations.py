"""Compaction, z-order, the vacuum guard, checkpoints, time travel, restore and CDF reads."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

import include.lakehouse.maintenance.operations as m
from include.lakehouse.errors import LakehouseError, RestoredUpstreamError, RetentionGuardError, VersionNotAvailableError
from include.lakehouse.tables.delta import FORGOTTEN, append, position


def small_files_table(uri, files=6):
    for i in range(files):
        write_deltalake(uri, pa.table({"id": list(range(i * 10, i * 10 + 10)), "k": [i] * 10}), mode="append")


def test_compact_merges_small_files_and_keeps_rows(tmp_path):
    uri = str(tmp_path / "t")
    small_files_table(uri)
    result = m.compact(uri)
    dt = DeltaTable(uri)
    assert result.files_removed == 6 and result.files_added == 1 and len(dt.file_uris()) == 1
    assert dt.count() == 60
    assert m.compact(uri).skipped  # nothing left to compact


def test_z_order_rewrites_on_columns_and_rejects_unknown_columns(tmp_path):
    uri = str(tmp_path / "t")
    small_files_table(uri)
    result = m.z_order(uri, ["k", "id"])
    assert result.files_removed == 6 and DeltaTable(uri).count() == 60
    with pytest.raises(LakehouseError, match="customer_id"):
        m.z_order(uri, ["customer_id"])


def test_vacuum_guard_refuses_short_retention_without_a_reason(tmp_path):
    uri = str(tmp_path / "t")
    small_files_table(uri, 2)
    with pytest.raises(RetentionGuardError, match=r"0 h is below the 168 h guard.*override_reason"):
        m.vacuum(uri, retention_hours=0)
    assert m.vacuum(uri).files_removed == 0  # default 168 h: nothing old enough


def test_vacuum_dry_run_lists_and_override_removes_then_restore_refuses(tmp_path):
    uri = str(tmp_path / "t")
    small_files_table(uri, 3)
    m.compact(uri)
    dry = m.vacuum(uri, retention_hours=0, dry_run=True, override_reason="test")
    assert dry.details["would_remove"] == 3 and dry.files_removed == 0
    assert len(DeltaTable(uri).file_uris()) == 1
    real = m.vacuum(uri, retention_hours=0, override_reason="reclaim space in test")
    assert real.files_removed == 3
    assert m.read_table(uri).num_rows == 30
    with pytest.raises(VersionNotAvailableError, match="version 1 was vacuumed"):
        m.restore(uri, version=1)
    with pytest.raises(VersionNotAvailableError, match="version 1 was vacuumed"):
        m.read_table(uri, version=1)


def test_time_travel_and_restore(tmp_path):
    uri = str(tmp_path / "t")
    write_deltalake(uri, pa.table({"id": [1, 2]}))
    write_deltalake(uri, pa.table({"id": [3]}), mode="append")
    DeltaTable(uri).delete("id = 1")
    assert m.read_table(uri, version=0).num_rows == 2
    assert sorted(m.read_table(uri).column("id").to_pylist()) == [2, 3]
    result = m.restore(uri, version=1)
    assert result.version == 3 and result.details["restored_to_version"] == 1
    assert sorted(m.read_table(uri).column("id").to_pylist()) == [1, 2, 3]
    assert m.history(uri, 1)[0]["operation"] == "RESTORE"
    with pytest.raises(VersionNotAvailableError, match="version 42 does not exist"):
        m.restore(uri, version=42)


def test_restore_rolls_positions_back_to_the_restored_version_in_the_same_commit(tmp_path):
    """Delta RESTORE keeps app transactions (delta-rs: transaction_version is unchanged after
    restore); ours sets each one changed after the target back to its value there, and forgets
    (FORGOTTEN, read as None by delta.position) those that did not exist yet."""
    uri = str(tmp_path / "t")
    append(uri, pa.table({"id": [1]}), transactions={"stream.0": 10, "file.a": 1})
    append(uri, pa.table({"id": [2]}), transactions={"stream.0": 20, "stream.1": 5, "file.b": 1})
    append(uri, pa.table({"id": [3]}), transactions={"stream.0": 30})
    result = m.restore(uri, version=1)
    dt = DeltaTable(uri)
    assert dt.version() == result.version == 4  # one commit: data and positions together
    assert sorted(dt.to_pyarrow_table().column("id").to_pylist()) == [1]
    assert {k: position(dt, k) for k in ("stream.0", "stream.1", "file.a", "file.b")} == {
        "stream.0": 10, "stream.1": None, "file.a": 1, "file.b": None}
    assert dt.transaction_version("file.b") == FORGOTTEN
    assert result.details["positions_reset"] == {"stream.0": [30, 10], "stream.1": [5, None], "file.b": [1, None]}
    # the appends the restore undid can now be written again, exactly once
    assert not append(uri, pa.table({"id": [2]}), app_id="file.b").skipped
    assert append(uri, pa.table({"id": [2]}), app_id="file.b").skipped


def test_restore_and_time_travel_refuse_conflicting_or_impossible_targets(tmp_path):
    uri = str(tmp_path / "t")
    write_deltalake(uri, pa.table({"id": [1]}))
    created = datetime.fromtimestamp(m.history(uri)[-1]["timestamp"] / 1000, timezone.utc)
    write_deltalake(uri, pa.table({"id": [2]}), mode="append")
    with pytest.raises(LakehouseError, match="a version or a timestamp, not both"):
        m.restore(uri, version=0, timestamp=created.isoformat())
    with pytest.raises(LakehouseError, match="a version or a timestamp, not both"):
        m.read_table(uri, version=0, timestamp=created.isoformat())
    with pytest.raises(VersionNotAvailableError, match="before the table's first version"):
        m.restore(uri, timestamp=(created - timedelta(days=1)).isoformat())
    with pytest.raises(VersionNotAvailableError, match="in the future"):
        m.restore(uri, timestamp=(datetime.now(timezone.utc) + timedelta(days=1)).isoformat())
    with pytest.raises(VersionNotAvailableError, match="version 2 does not exist"):
        m.restore(uri, version=2)
    with pytest.raises(LakehouseError, match="already at version 1"):
        m.restore(uri, version=1)
    with pytest.raises(LakehouseError, match="not an ISO timestamp"):
        m.restore(uri, timestamp="yesterday")
    assert m.restore(uri, timestamp=created.isoformat()).details["restored_to_version"] == 0


def test_a_change_feed_reader_reads_past_restores_and_refuses_undone_changes(tmp_path):
    uri = str(tmp_path / "t")
    DeltaTable.create(uri, schema=pa.schema([("id", pa.int64())]), configuration={"delta.enableChangeDataFeed": "true"})
    for i in range(1, 5):  # versions 1..4 insert ids 1..4
        write_deltalake(uri, pa.table({"id": [i]}), mode="append")
    m.restore(uri, version=2)  # 5: back to ids 1, 2 (3, 4 undone)
    write_deltalake(uri, pa.table({"id": [6]}), mode="append")  # 6
    m.restore(uri, version=5)  # 7: 6 undone
    write_deltalake(uri, pa.table({"id": [8]}), mode="append")  # 8
    assert m.feed_ranges(uri, None, 8) == [(0, 2), (8, 8)]
    assert m.feed_ranges(uri, 1, 8) == [(2, 2), (8, 8)]
    assert m.feed_ranges(uri, 5, 8) == [(8, 8)] and m.feed_ranges(uri, 8, 8) == []
    inserted = m.read_changes_since(uri, 1, 8)
    assert sorted(inserted.column("id").to_pylist()) == [2, 8]
    assert set(inserted.column("_change_type").to_pylist()) == {"insert"}
    assert m.read_changes_since(uri, 5, 7).num_rows == 0
    with pytest.raises(RestoredUpstreamError, match=r"restored at version 7 to version 5.*applied up to version 6"):
        m.feed_ranges(uri, 6, 8)
    with pytest.raises(RestoredUpstreamError, match=r"restored at version 5 to version 2.*applied up to version 3"):
        m.feed_ranges(uri, 3, 8)
    m.restore(uri, version=4)  # 9: ids 1..4 again, so a consumer that applied 3 or 4 is fine once more
    assert m.feed_ranges(uri, 3, 9) == [(4, 4)]


def test_checkpoint_and_change_data_feed(tmp_path):
    uri = str(tmp_path / "t")
    write_deltalake(uri, pa.table({"id": [1, 2]}), configuration={"delta.enableChangeDataFeed": "true"})
    DeltaTable(uri).update({"id": "10"}, predicate="id = 2")
    m.checkpoint(uri)
    assert any(p.name.endswith(".checkpoint.parquet") for p in (tmp_path / "t" / "_delta_log").iterdir())
    changes = m.read_changes(uri, starting_version=1).to_pylist()
    assert sorted((r["id"], r["_change_type"]) for r in changes) == [(2, "update_preimage"), (10, "update_postimage")]
    plain = str(tmp_path / "plain")
    write_deltalake(plain, pa.table({"id": [1]}))
    with pytest.raises(LakehouseError, match="change data feed is not enabled"):
        m.read_changes(plain)
