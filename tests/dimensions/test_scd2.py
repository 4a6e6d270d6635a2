"""SCD type 2 with type 1 columns: history, late-arriving changes, deletes, idempotent reruns."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
from deltalake import DeltaTable

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
