"""SCD type 2 with type 1 columns: history, late-arriving changes, deletes, idempotent reruns."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable, write_deltalake

from include.lakehouse.dimensions.scd2 import apply_scd2


def ts(day):
    return datetime(2024, 1, day, tzinfo=timezone.utc)


def changes(*rows):
    return pa.table({
        "customer_id": pa.array([r[0] for r in rows], pa.int64()), "city": pa.array([r[1] for r in rows], pa.string()),
        "name": pa.array([r[2] for r in rows], pa.string()),
        "changed_at": pa.array([ts(r[3]) for r in rows], pa.timestamp("us", tz="UTC")),
        "deleted": [r[4] if len(r) > 4 else False for r in rows],
    })


KW = dict(keys=["customer_id"], tracked=["city"], type1=["name"], deleted_column="deleted", surrogate_key="customer_sk")


def history(uri, key=1):
    rows = DeltaTable(uri).to_pyarrow_table().to_pylist()
    rows = sorted((r for r in rows if r["customer_id"] == key), key=lambda r: r["valid_from"])
    return [(r["city"], r["name"], r["valid_from"].day, r["valid_to"].day if r["valid_to"] else None,
             r["is_current"], r["is_deleted"]) for r in rows]


def test_tracked_change_opens_a_new_version_and_type1_corrects_all(tmp_path):
    uri = str(tmp_path / "dim")
    apply_scd2(uri, changes((1, "Oslo", "Jon", 1), (2, "Rome", "Ada", 1)), **KW)
    result = apply_scd2(uri, changes((1, "Bergen", "John", 5)), **KW)
    assert history(uri) == [("Oslo", "John", 1, 5, False, False), ("Bergen", "John", 5, None, True, False)]
    assert (result.rows_inserted, result.rows_updated) == (1, 1)
    same = apply_scd2(uri, changes((1, "Bergen", "John", 7)), **KW)  # no tracked change: no new version
    assert same.skipped and len(history(uri)) == 2


def test_late_arriving_change_splits_the_interval_it_falls_into(tmp_path):
    uri = str(tmp_path / "dim")
    apply_scd2(uri, changes((1, "Oslo", "Jon", 1)), **KW)
    apply_scd2(uri, changes((1, "Bergen", "Jon", 10)), **KW)
    late = apply_scd2(uri, changes((1, "Tromso", "Jon", 4)), **KW)
    assert late.details["late"] == 1
    assert history(uri) == [
        ("Oslo", "Jon", 1, 4, False, False), ("Tromso", "Jon", 4, 10, False, False),
        ("Bergen", "Jon", 10, None, True, False),
    ]
    sks = {r["customer_sk"] for r in DeltaTable(uri).to_pyarrow_table().to_pylist()}
    assert len(sks) == 3


def test_rerun_of_the_same_batch_changes_nothing(tmp_path):
    uri = str(tmp_path / "dim")
    batch = changes((1, "Oslo", "Jon", 1), (1, "Bergen", "Jon", 3), (2, "Rome", "Ada", 2))
    apply_scd2(uri, batch, **KW)
    version = DeltaTable(uri).version()
    again = apply_scd2(uri, batch, **KW)
    assert again.skipped and DeltaTable(uri).version() == version


def test_source_delete_closes_the_current_version_and_says_so(tmp_path):
    uri = str(tmp_path / "dim")
    apply_scd2(uri, changes((1, "Oslo", "Jon", 1)), **KW)
    apply_scd2(uri, changes((1, "Oslo", "Jon", 6, True)), **KW)
    assert history(uri) == [("Oslo", "Jon", 1, 6, False, True)]
    apply_scd2(uri, changes((1, "Oslo", "Jon", 9)), **KW)  # re-created after the delete
    assert history(uri) == [("Oslo", "Jon", 1, 6, False, True), ("Oslo", "Jon", 9, None, True, False)]


def test_change_at_the_time_of_a_stored_delete_replaces_the_delete(tmp_path):
    uri = str(tmp_path / "dim")
    apply_scd2(uri, changes((1, "Oslo", "Jon", 1)), **KW)
    apply_scd2(uri, changes((1, "Oslo", "Jon", 6, True)), **KW)
    apply_scd2(uri, changes((1, "Rome", "Jon", 6)), **KW)  # the source corrects: not deleted, moved
    assert history(uri) == [("Oslo", "Jon", 1, 6, False, False), ("Rome", "Jon", 6, None, True, False)]
    rows = DeltaTable(uri).to_pyarrow_table().to_pylist()
    assert len({r["customer_sk"] for r in rows}) == 2 and all(r["customer_sk"] for r in rows)


def test_several_keys_interleaved_changes_and_duplicates_in_one_batch(tmp_path):
    uri = str(tmp_path / "dim")
    apply_scd2(uri, changes((1, "Oslo", "Jon", 1), (2, "Bergen", "Ada", 1)), **KW)
    apply_scd2(uri, changes(
        (2, "Rome", "Ada", 5), (1, "Oslo", "Jonathan", 3),  # key 1: type 1 only, no new version
        (2, "Paris", "Ada", 5),  # same key and time: the later change in the batch wins
        (2, "Paris", "Ada", 7),  # repeats the state before it: not a version
        (1, "Lima", "Jon", 2),  # late for key 1 and changes the name back
    ), **KW)
    assert history(uri, 1) == [("Oslo", "Jonathan", 1, 2, False, False), ("Lima", "Jonathan", 2, 3, False, False),
                               ("Oslo", "Jonathan", 3, None, True, False)]
    assert history(uri, 2) == [("Bergen", "Ada", 1, 5, False, False), ("Paris", "Ada", 5, None, True, False)]


def _reference(versions: dict, batch: list[dict]) -> dict:
    """SCD2 the plain way, key by key: what apply_scd2 must compute with its vectorised plan.
    versions: key -> [(city, name, valid_from, valid_to, is_current, is_deleted)]."""
    out = dict(versions)
    for key in {row["customer_id"] for row in batch}:
        stored = versions.get(key, [])
        events = [(v[2], 0, i, False, v[0], v[1]) for i, v in enumerate(stored)]
        events += [(v[3], 0, i, True, None, None) for i, v in enumerate(stored) if v[5]]
        events += [(r["changed_at"].day, 1, i, r["deleted"], r["city"], r["name"])
                   for i, r in enumerate(batch) if r["customer_id"] == key]
        events.sort(key=lambda e: e[:3])
        events = [e for i, e in enumerate(events) if i + 1 == len(events) or events[i + 1][0] != e[0]]  # newest wins
        names = [e[5] for e in events if not e[3]]
        kept = []
        for e in events:  # a repeat of the state before it is no new version
            if kept and kept[-1][3] == e[3] and (e[3] or kept[-1][4] == e[4]):
                continue
            kept.append(e)
        out[key] = [(e[4], names[-1], e[0], nxt[0] if nxt else None, nxt is None, bool(nxt and nxt[3]))
                    for e, nxt in zip(kept, kept[1:] + [None]) if not e[3]]
    return out


def test_history_matches_a_plain_per_key_reference_on_random_change_streams(tmp_path):
    import random

    for seed in range(40):
        rng, uri, expected = random.Random(seed), str(tmp_path / f"dim{seed}"), {}
        for batch_no in range(4):
            batch = [{"customer_id": rng.randint(1, 5), "city": rng.choice(["Oslo", "Lyon", None]),
                      "name": rng.choice(["Ann", "Bo", None]), "changed_at": ts(rng.randint(1, 9)),
                      "deleted": rng.random() < 0.15} for _ in range(rng.randint(1, 12))]
            apply_scd2(uri, changes(*[(r["customer_id"], r["city"], r["name"], r["changed_at"].day, r["deleted"])
                                      for r in batch]), **KW)
            expected = _reference(expected, batch)
            actual = {key: history(uri, key) for key in expected}
            assert actual == {k: sorted(v, key=lambda v: v[2]) for k, v in expected.items()}, (seed, batch_no)


def scd2_batches_while_compacting(role: str, uri: str, batches: int) -> int:
    """One side of a race (run in a child process): SCD2 batches, or compactions until they are through."""
    from tests.processes import compact_until

    if role == "compact":
        compact_until(uri, "src", batches - 1)
        return batches
    for i in range(batches):
        day = 2 + i
        apply_scd2(uri, changes(*[(k, f"city{i}", "Jon", day) for k in range(1 + i % 3, 30, 3)]),
                   transactions={"src": i}, **KW)
    return batches


def test_scd2_batches_racing_a_compaction_all_commit(tmp_path):
    from tests.processes import race

    uri = str(tmp_path / "dim")
    for k in range(1, 30, 6):  # several small files for the compaction to rewrite
        apply_scd2(uri, changes(*[(i, "Oslo", "Jon", 1) for i in range(k, k + 6)]), **KW)
    outcomes = race("tests.dimensions.test_scd2.scd2_batches_while_compacting",
                    [(("scd2", uri, 12), {}), (("compact", uri, 12), {})])
    assert outcomes == [("ok", 12), ("ok", 12)], outcomes
    rows = DeltaTable(uri).to_pyarrow_table().to_pylist()
    expected = {k: "Oslo" for k in range(1, 31)}
    for i in range(12):
        expected.update({k: f"city{i}" for k in range(1 + i % 3, 30, 3)})
    assert {r["customer_id"]: r["city"] for r in rows if r["is_current"]} == expected
    assert len(rows) == 30 + sum(len(range(1 + i % 3, 30, 3)) for i in range(12))
    assert DeltaTable(uri).transaction_version("src") == 11


def test_a_batch_on_a_few_keys_reads_and_rewrites_only_their_files_and_lands_like_a_full_read(lakehouse_root):
    """A dimension cut into small files (its registered file size): a batch touching a few keys
    (changes, a late change, a delete, a new key) leaves every other key's history and every file
    without its keys as they were, and ends bit-identical to the same batches applied to a
    one-file copy of the dimension (where the plan reads and the merge rewrites everything)."""
    import numpy as np

    import include.lakehouse.dimensions.scd2 as scd
    from include.lakehouse.tables.registry import MaintenancePolicy, TableSpec

    spec = TableSpec(name="gold/dim_small_files", layer="gold", maintenance=MaintenancePolicy(target_file_size_mb=1))
    reference = str(lakehouse_root / "one_file")
    n = 120_000
    first = pa.table({
        "customer_id": pa.array(np.arange(n), pa.int64()), "city": pa.array([f"city{i % 97}" for i in range(n)]),
        "name": pa.array([f"name{i}" for i in range(n)]),
        "changed_at": pa.array([ts(1)] * n, pa.timestamp("us", tz="UTC")), "deleted": pa.array([False] * n),
    })
    for target in (spec, reference):
        apply_scd2(target, first, **KW)
        apply_scd2(target, changes(*[(k, "Moved", f"name{k}", 10) for k in (5, 6, 7, 60_000)]), **KW)
    dt = DeltaTable(spec.uri)
    files_before = set(dt.file_uris())
    assert len(files_before) >= 3 and len(DeltaTable(reference).file_uris()) == 1
    touched = [5, 6, 7, 8, 9, n + 1]
    batch = changes((5, "Late", "Five", 5), (6, "Back", "Six", 12), (7, "Gone", "Seven", 12, True),
                    (8, "Oslo", "Eight", 3), (9, "city9", "Nine", 20), (n + 1, "New", "New", 2))
    stored = scd._stored_versions(dt, batch, ["customer_id"])
    assert sorted(set(stored.column("customer_id").to_pylist())) == touched[:-1]
    before = dt.to_pyarrow_table()
    result = apply_scd2(spec, batch, **KW)
    apply_scd2(reference, batch, **KW)
    after = DeltaTable(spec.uri)
    assert result.files_removed < len(files_before)
    assert files_before & set(after.file_uris())  # the files without touched keys stay as they were
    others = ~pc.field("customer_id").isin(touched)
    untouched_before = before.filter(others).sort_by("customer_sk")
    assert after.to_pyarrow_table().filter(others).sort_by("customer_sk").equals(untouched_before)
    ours = after.to_pyarrow_table().sort_by("customer_sk")
    assert ours.equals(DeltaTable(reference).to_pyarrow_table().select(ours.column_names).sort_by("customer_sk"))
    assert history(spec.uri, 5) == [("city5", "name5", 1, 5, False, False), ("Late", "name5", 5, 10, False, False),
                                    ("Moved", "name5", 10, None, True, False)]  # type 1: newest by time


def test_the_stored_versions_of_a_batch_are_found_for_any_key_type(tmp_path):
    """Key ranges used to skip files cover every key of the batch: string keys with quotes,
    composite keys, extreme and negative integers, null keys (no pruning then)."""
    import numpy as np

    import include.lakehouse.dimensions.scd2 as scd

    rng = np.random.default_rng(7)
    ints = rng.integers(-2**62, 2**62, 3000)
    cases = {
        "int": (pa.array(np.concatenate([ints, [-2**63, 2**63 - 1]]), pa.int64()), None),
        "str": (pa.array([f"o'k{i}" if i % 3 else f"a\"b{i}" for i in range(3000)]), None),
        "composite": (pa.array(np.arange(3000) % 50, pa.int64()), pa.array([f"r{i % 7}" for i in range(3000)])),
        "null": (pa.array([None if i % 500 == 0 else i for i in range(3000)], pa.int64()), None),
    }
    for name, (first, second) in cases.items():
        keys = ["k"] if second is None else ["k", "k2"]
        data = {"k": first, **({"k2": second} if second is not None else {})}
        table = pa.table({**data, "v": pa.array([f"v{i}" for i in range(len(first))])})
        uri = str(tmp_path / name)
        for s in range(0, len(first), 1000):  # three files, each over a wide key range
            write_deltalake(uri, table.slice(s, 1000), mode="append")
        dt = DeltaTable(uri)
        batch = table.take(rng.choice(len(first), 40, replace=False))
        found = scd._stored_versions(dt, batch, keys).to_pylist()
        wanted = {tuple(r[k] for k in keys) for r in batch.to_pylist()}
        expected = [r for r in dt.to_pyarrow_table().to_pylist() if tuple(r[k] for k in keys) in wanted]
        assert sorted(found, key=repr) == sorted(expected, key=repr) and len(found) >= 40, name


@pytest.mark.parametrize("kind", ["int", "string", "composite"])
def test_a_batch_rewrites_its_key_ranges_and_lands_exactly_as_a_merge_would(tmp_path, lakehouse_root, kind):
    """A dimension without a change feed takes each batch as one rewrite of the batch's key
    ranges (unchanged rows in them written back as they were); one with a change feed keeps
    merging (its feed shows updates as updates). On the same random batches (late changes,
    deletes, untouched keys inside the ranges; integer, string and composite keys) both end
    with the same rows, surrogate keys and row hashes, report the same counts, and the daily
    volume counts new versions, never the rows written back."""
    import random

    from include.lakehouse.observability.health import daily_volume
    from include.lakehouse.tables.delta import commit_log
    from include.lakehouse.tables.registry import TableSpec

    options = dict(KW, keys=["customer_id", "name"], type1=[]) if kind == "composite" else KW
    rng = random.Random(11)
    plain = str(tmp_path / "plain")
    fed = TableSpec(name="gold/dim_fed", layer="gold", change_data_feed=True)
    inserted = 0
    for batch_no in range(8):
        batch = changes(*[(rng.randint(1, 200), rng.choice(["Oslo", "Lyon", "Rome", None]),
                           rng.choice(["Ann", "Bo"] + ([] if kind == "composite" else [None])),
                           rng.randint(1, 28), rng.random() < 0.1) for _ in range(rng.randint(1, 60))])
        if kind == "string":
            batch = batch.set_column(0, "customer_id", pc.cast(batch.column("customer_id"), pa.string()))
        ours, merged = apply_scd2(plain, batch, **options), apply_scd2(fed, batch, **options)
        assert ((ours.rows_inserted, ours.rows_updated, ours.rows_deleted, ours.details["late"])
                == (merged.rows_inserted, merged.rows_updated, merged.rows_deleted, merged.details["late"])), batch_no
        inserted += ours.rows_inserted
        rows = DeltaTable(plain).to_pyarrow_table().sort_by("customer_sk")
        assert rows.equals(DeltaTable(fed.uri).to_pyarrow_table().select(rows.column_names).sort_by("customer_sk"))
    operations = [c["operation"] for c in DeltaTable(plain).history()][::-1]
    assert operations[:2] == ["CREATE TABLE", "MERGE"] and set(operations[2:]) == {"WRITE"}  # the first load merges
    assert {c["operation"] for c in DeltaTable(fed.uri).history()[:-2]} == {"MERGE"}
    feed = pa.table(DeltaTable(fed.uri).load_cdf(starting_version=0).read_all())
    assert "update_postimage" in set(feed.column("_change_type").to_pylist())
    assert sum(day["rows_added"] for day in daily_volume(commit_log(DeltaTable(plain))).values()) == inserted


def test_a_batch_of_one_string_key_finds_its_versions_in_files_a_merge_wrote(tmp_path):
    """delta-rs merges write strings as string_view: reading the versions of a single string
    key (the range `'k' <= key <= 'k'`, which Arrow turns into `key == 'k'`) used to fail with
    "no kernel matching input types (string, string_view)"."""
    uri = str(tmp_path / "dim")
    batch = changes((1, "Oslo", "Jon", 1), (2, "Rome", "Ada", 1))
    apply_scd2(uri, batch.set_column(0, "customer_id", pc.cast(batch.column("customer_id"), pa.string())), **KW)
    later = changes((1, "Bergen", "Jon", 5))
    apply_scd2(uri, later.set_column(0, "customer_id", pc.cast(later.column("customer_id"), pa.string())), **KW)
    rows = DeltaTable(uri).to_pyarrow_table().to_pylist()
    assert sorted((r["customer_id"], r["city"], r["is_current"]) for r in rows) == [
        ("1", "Bergen", True), ("1", "Oslo", False), ("2", "Rome", True)]


def test_a_concurrent_append_inside_a_batchs_key_ranges_makes_it_re_plan(tmp_path):
    """The rewrite of a batch's key ranges commits only on the snapshot it read: a version
    appended in between for one of its keys fails the commit and the batch is planned again
    with it (never silently dropped by the rewrite)."""
    import include.lakehouse.dimensions.scd2 as scd

    uri = str(tmp_path / "dim")
    apply_scd2(uri, changes((1, "Oslo", "Jon", 1), (2, "Rome", "Ada", 1)), **KW)
    intruder = DeltaTable(uri).to_pyarrow_table().filter(pc.field("customer_id") == 1)
    intruder = intruder.set_column(0, "customer_sk", pa.array([42], pa.int64()))
    real, calls = scd._history_changes, []

    def plan_then_someone_appends(*args, **kwargs):
        if not calls:  # after the batch read its snapshot
            write_deltalake(uri, intruder, mode="append")
        calls.append(1)
        return real(*args, **kwargs)

    scd._history_changes = plan_then_someone_appends
    try:
        apply_scd2(uri, changes((1, "Bergen", "Jon", 4), (2, "Paris", "Ada", 4)), **KW)
    finally:
        scd._history_changes = real
    assert len(calls) == 2  # re-planned on the new snapshot
    assert 42 in DeltaTable(uri).to_pyarrow_table().column("customer_sk").to_pylist()


def test_row_hashes_are_pandas_hashes_of_the_text_forms(tmp_path):
    """Stored row hashes and surrogate keys must not change between releases (a rerun would see
    every version as changed): the hash of the tracked columns is pandas' hash of their text
    forms, nulls as "\\x00", for strings (with nulls, unicode, empty), numbers and times alike."""
    import numpy as np
    import pandas as pd

    import include.lakehouse.dimensions.scd2 as scd

    rng = np.random.default_rng(3)
    n = 2000
    words = ["Oslo", "Zürich", "", "o'k", None, "\x00", "日本"]
    table = pa.table({
        "s": pa.array([words[i] for i in rng.integers(0, len(words), n)]),
        "big": pa.array([f"v{i}" if i % 7 else None for i in rng.integers(0, 10**9, n)], pa.large_string()),
        "f": pa.array([None if i % 11 == 0 else float(i) / 3 for i in range(n)]),
        "i": pa.array(rng.integers(-5, 5, n), pa.int32()),
        "t": pa.array([ts(1 + i % 28) for i in range(n)], pa.timestamp("us", tz="UTC")),
    })
    for columns in (["s"], ["big"], ["s", "f", "i", "t"], ["t", "big", "s"]):
        expected = pd.util.hash_pandas_object(table.select(columns).to_pandas().astype("string").fillna("\x00"),
                                              index=False).to_numpy().view(np.int64)
        assert np.array_equal(scd._hash(table, columns, as_text=True), expected), columns
        chunked = pa.concat_tables([table.slice(0, 700), table.slice(700)])
        assert np.array_equal(scd._hash(chunked, columns, as_text=True), expected), columns
