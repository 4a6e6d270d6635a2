"""Translation on real tables: after appends, a merge, a delete and a compaction, Delta, Iceberg
and Hudi agree at every version; reruns are no-ops; a crash mid-translation leaves every
format readable; vacuum never deletes a file an Iceberg snapshot still references."""

from __future__ import annotations

import os

import pytest
from deltalake import DeltaTable

import include.lakehouse.maintenance.operations as maintenance
from include.lakehouse.formats import hudi, iceberg, publish, query
from tests.formats.conftest import TABLE, rows
from tests.processes import run_and_kill


def agree_at_every_version(uri: str, first: int = 0) -> None:
    con = query.connect()
    for version in range(first, DeltaTable(uri).version() + 1):
        prints = {fmt: query.fingerprint(uri, fmt, version=version, con=con) for fmt in query.FORMATS}
        assert prints["iceberg"] == prints["delta"] == prints["hudi"], (version, prints)
    now = {fmt: query.fingerprint(uri, fmt, con=con) for fmt in query.FORMATS}
    assert now["iceberg"] == now["delta"] == now["hudi"]


def test_all_formats_agree_at_every_version_after_appends_merge_delete_compaction(gold_table):
    assert [c["operation"] for c in DeltaTable(gold_table).history()][::-1] == ["WRITE", "WRITE", "MERGE", "DELETE", "WRITE", "OPTIMIZE"]
    result = publish.publish_table(TABLE)
    versions = DeltaTable(gold_table).version() + 1
    assert [(f["format"], f["snapshots_written"], f["mode"]) for f in result["formats"]] == \
        [("iceberg", versions, "zero_copy"), ("hudi", versions, "hardlink")]
    agree_at_every_version(gold_table)
    # zero copy: Iceberg points at Delta's own files; Hudi's base files are hardlinks of them
    current = {f for f in DeltaTable(gold_table).file_uris()}
    assert {p for p in iceberg.referenced_files(TABLE) if p in current} == current
    linked = [p for p in hudi.table_path(TABLE).glob("*.parquet")]
    assert linked and all(os.stat(p).st_nlink >= 1 for p in linked)
    assert any(os.stat(p).st_nlink == 2 for p in linked)
    log = query.read("ops/format_publish_log", sql="SELECT format, mode, to_delta_version FROM t ORDER BY format")
    assert log.to_pylist() == [{"format": "hudi", "mode": "hardlink", "to_delta_version": versions - 1},
                               {"format": "iceberg", "mode": "zero_copy", "to_delta_version": versions - 1}]


def test_incremental_and_idempotent_reruns(gold_table):
    from include.lakehouse.tables import delta

    publish.publish_table(TABLE, upto=1)
    again = publish.publish_table(TABLE, upto=1)
    assert [f["snapshots_written"] for f in again["formats"]] == [0, 0]
    rest = publish.publish_table(TABLE)
    newer = DeltaTable(gold_table).version() - 1
    assert [(f["from_version"], f["snapshots_written"]) for f in rest["formats"]] == [(1, newer), (1, newer)]
    assert [f["snapshots_written"] for f in publish.publish_table(TABLE)["formats"]] == [0, 0]
    delta.append(gold_table, rows(9000, 10))  # a new Delta version: only it is translated
    assert [f["snapshots_written"] for f in publish.publish_table(TABLE)["formats"]] == [1, 1]
    log = query.read("ops/format_publish_log", sql="SELECT count(*) AS n FROM t").column("n")[0].as_py()
    assert log == 6  # one row per (format, publish that translated something); reruns add none
    agree_at_every_version(gold_table)


@pytest.mark.parametrize("failpoint", ["formats.iceberg.before_commit", "formats.hudi.before_complete"])
def test_crash_mid_translation_leaves_every_format_readable(gold_table, failpoint):
    publish.publish_table(TABLE, upto=1)
    code = run_and_kill("include.lakehouse.formats.publish.publish_table", (TABLE,), failpoint=failpoint)
    assert code == -9
    con = query.connect()
    delta_v1 = query.fingerprint(gold_table, "delta", version=1, con=con)
    for fmt in ("iceberg", "hudi"):  # whatever the crash left, each format reads a complete version
        published = (iceberg.published_version(iceberg.load(TABLE)) if fmt == "iceberg"
                     else hudi.published_version(hudi.table_path(TABLE)))
        assert query.fingerprint(gold_table, fmt, con=con) == query.fingerprint(gold_table, "delta", version=published, con=con)
    assert query.fingerprint(gold_table, "hudi", version=1, con=con) == delta_v1
    publish.publish_table(TABLE)  # the rerun finishes the job
    agree_at_every_version(gold_table)


def test_vacuum_refuses_while_iceberg_references_removed_files_then_runs_after_expiry(gold_table, monkeypatch):
    publish.publish_table(TABLE, upto=2)  # Iceberg's current snapshot = Delta v2: files v3/v4 removed
    result = maintenance.vacuum(gold_table, retention_hours=0, override_reason="test")
    assert result.skipped and result.details["pinned_files"] > 0 and result.files_removed == 0
    assert all(os.path.exists(p) for p in iceberg.referenced_files(TABLE))
    assert query.fingerprint(gold_table, "iceberg")["rows"] > 0

    # publish catches up and expires snapshots past the retention; the pins are released
    expire_with_table_retention = iceberg.expire
    monkeypatch.setattr(iceberg, "expire", lambda name, uri, hours: expire_with_table_retention(name, uri, 0))
    publish.publish_table(TABLE)
    con = query.connect()
    before = query.fingerprint(gold_table, "delta", con=con)
    done = maintenance.vacuum(gold_table, retention_hours=0, override_reason="test")
    assert not done.skipped and done.files_removed > 0
    assert query.fingerprint(gold_table, "iceberg", con=con) == before == query.fingerprint(gold_table, "hudi", con=con)
    # Hudi keeps its own hardlinks: its time travel survives Delta's vacuum
    assert query.fingerprint(gold_table, "hudi", version=0, con=con)["rows"] == 2000
    # the vacuum's own commits and what comes after translate too
    vacuumed_at = DeltaTable(gold_table).version() - 1  # VACUUM START, VACUUM END
    monkeypatch.setattr(iceberg, "expire", expire_with_table_retention)  # back to the table's 168 h
    from include.lakehouse.tables import delta

    delta.append(gold_table, rows(7000, 25))
    # Iceberg: a snapshot each for VACUUM START, VACUUM END and the append; Hudi: an instant for the
    # append only (versions that change no file get none: hudi-rs takes the schema from the newest)
    assert [f["snapshots_written"] for f in publish.publish_table(TABLE)["formats"]] == [3, 1]
    agree_at_every_version(gold_table, first=vacuumed_at)


def test_partitioned_tables_fall_back_to_rewrite_and_say_why(lakehouse_root):
    from include.lakehouse.tables import delta

    uri = f"{lakehouse_root}/gold/partitioned"
    delta.append(uri, rows(0, 500), partition_by=["order_date"])
    delta.append(uri, rows(500, 500))
    result = publish.publish_table(uri)
    assert {f["mode"] for f in result["formats"]} == {"rewrite"}
    assert all("partitioned" in f["reason"] for f in result["formats"])
    agree_at_every_version(uri)


def test_versions_vacuumed_before_they_were_published_are_skipped_not_stuck(lakehouse_root):
    from include.lakehouse.tables import delta

    uri = f"{lakehouse_root}/gold/lagging"
    delta.append(uri, rows(0, 500))                     # v0: file A
    publish.publish_table(uri)                          # both formats at v0
    delta.append(uri, rows(500, 500))                   # v1: file B
    DeltaTable(uri).delete("orders >= 900")             # v2: B rewritten
    assert not maintenance.vacuum(uri, retention_hours=0, override_reason="test").skipped  # B gone, A kept
    result = publish.publish_table(uri)
    assert [f["versions_vacuumed_before_publish"] for f in result["formats"]] == [[1], [1]]
    con = query.connect()
    assert query.fingerprint(uri, "delta", con=con) == query.fingerprint(uri, "iceberg", con=con) \
        == query.fingerprint(uri, "hudi", con=con)


@pytest.mark.parametrize("seed", [1, 2])
def test_any_sequence_of_writes_and_publishes_keeps_the_formats_in_agreement(lakehouse_root, seed):
    """A random mix of appends, merges, deletes and compactions, published at random points
    (a plain reference: Delta itself at the same version)."""
    import random

    from include.lakehouse.tables import delta

    rng = random.Random(seed)
    uri = f"{lakehouse_root}/gold/random_{seed}"
    delta.append(uri, rows(0, 200))
    next_id = 200
    for _ in range(7):
        op = rng.choice(["append", "merge", "delete", "compact", "publish"])
        if op == "append":
            delta.append(uri, rows(next_id, rng.randint(1, 50)))
            next_id += 50
        elif op == "merge":
            start = rng.randint(0, next_id)
            delta.merge_upsert(uri, rows(start, rng.randint(1, 40), amount=rng.random()), keys=["orders"])
            next_id = max(next_id, start + 40)
        elif op == "delete":
            low = rng.randint(0, next_id)
            DeltaTable(uri).delete(f"orders >= {low} AND orders < {low + rng.randint(1, 30)}")
        elif op == "compact":
            maintenance.compact(uri, target_size_mb=64)
        else:
            publish.publish_table(uri)
    publish.publish_table(uri)
    agree_at_every_version(uri)


def test_required_column_in_delta_with_optional_parquet_fields_publishes(lakehouse_root):
    """Delta's schema says NOT NULL but later files (a merge from nullable data, Spark's
    writer) mark the column optional: Iceberg mirrors columns as optional, Delta enforces."""
    import pyarrow as pa

    from include.lakehouse.tables import delta

    uri = f"{lakehouse_root}/gold/required"
    schema = pa.schema([pa.field("status", pa.string()), pa.field("orders", pa.int64(), nullable=False)])
    delta.merge_upsert(uri, pa.Table.from_pylist([{"status": "a", "orders": 1}], schema=schema), keys=["status"])
    delta.merge_upsert(uri, pa.table({"status": ["b"], "orders": pa.array([2], pa.int64())}), keys=["status"])
    # v0 is the empty table merge_upsert creates first: an Iceberg snapshot, no Hudi instant
    assert [f["snapshots_written"] for f in publish.publish_table(uri)["formats"]] == [3, 2]
    agree_at_every_version(uri)


def test_maintenance_report_says_the_vacuum_was_refused_and_why(gold_table):
    from include.lakehouse.maintenance.policy import apply_policy

    publish.publish_table(TABLE, upto=2)
    report = apply_policy(TABLE, retention_hours=0, vacuum_override_reason="test")
    assert "vacuum refused:" in report["detail"] and "publish.pinned_files" in report["detail"], report
    assert all(os.path.exists(p) for p in iceberg.referenced_files(TABLE))
