"""CDC apply: `apply_cdc` of 100k change events (60k updates, 20k inserts, 20k deletes) into a
1M-row table, beside a raw delta-rs merge of the same batch on the same table in the same run.

    python -m bench.run cdc
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bench import _data
from bench.harness import compare, median

ROWS, REPEATS = 1_000_000, 3


def setup(root: Path):
    """The table (as apply_cdc leaves it: `_cdc_sequence` per row) and the change batch."""
    import numpy as np
    import pyarrow as pa
    from deltalake import write_deltalake

    uri = str(root / "orders")
    write_deltalake(uri, pa.table({
        "order_id": pa.array(np.arange(ROWS), pa.int64()), "status": pa.array(["placed"] * ROWS),
        "amount": pa.array(np.random.default_rng(1).uniform(1, 500, ROWS)),
        "_cdc_sequence": pa.array(np.ones(ROWS, dtype=np.int64)),
    }))
    rng = np.random.default_rng(2)
    updates = rng.choice(ROWS, 60_000, replace=False)
    deletes = np.setdiff1d(rng.choice(ROWS, 30_000, replace=False), updates)[:20_000]
    inserts = np.arange(ROWS, ROWS + 20_000)
    ids = np.concatenate([updates, deletes, inserts])
    ops = ["u"] * len(updates) + ["d"] * len(deletes) + ["c"] * len(inserts)
    changes = pa.table({
        "order_id": pa.array(ids, pa.int64()), "status": pa.array(["shipped"] * len(ids)),
        "amount": pa.array(rng.uniform(1, 500, len(ids))), "op": pa.array(ops),
        "lsn": pa.array(np.arange(10, 10 + len(ids)), pa.int64()),
    })
    return uri, changes


def raw_merge(uri: str, changes) -> None:
    """The peer: one delta-rs merge of the batch as it is (one event per key here), no ordering,
    tombstones or positions."""
    from deltalake import DeltaTable

    source = changes.rename_columns(["order_id", "status", "amount", "op", "_cdc_sequence"])
    cols = {c: f"s.{c}" for c in ("order_id", "status", "amount", "_cdc_sequence")}
    (DeltaTable(uri).merge(source, predicate="t.order_id = s.order_id", source_alias="s", target_alias="t")
     .when_matched_delete(predicate="s.op = 'd'")
     .when_matched_update(updates=cols, predicate="s.op <> 'd'")
     .when_not_matched_insert(updates=cols, predicate="s.op <> 'd'")
     .execute())


def run() -> dict:
    from include.lakehouse.cdc.apply import apply_cdc

    root = _data.fresh_root("bench-cdc-")
    uri, changes = setup(root)
    results, copies = [], iter(range(10 * REPEATS))

    def fresh() -> str:
        copy = str(root / f"copy{next(copies)}" / "orders")
        shutil.copytree(uri, copy)
        return copy

    def project() -> float:
        mine = fresh()
        return _data.timed(lambda: results.append(
            apply_cdc(mine, changes, keys=["order_id"], sequence_column="lsn")))

    def peer() -> float:
        reference = fresh()
        return _data.timed(lambda: raw_merge(reference, changes))

    runs = _data.interleaved({"apply_cdc": project, "raw_delta_rs_merge": peer}, REPEATS)
    med = {k: median(v) for k, v in runs.items()}
    last = results[-1]
    return {
        "rows_before": ROWS, "events": changes.num_rows, "inserted": last.rows_inserted,
        "updated": last.rows_updated, "deleted": last.rows_deleted, "repeats": REPEATS,
        "runs_seconds": {k: [round(x, 3) for x in v] for k, v in runs.items()},
        "best_seconds": {k: round(min(v), 3) for k, v in runs.items()},  # the least disturbed turn
        "median_seconds": {k: round(v, 3) for k, v in med.items()},
        "comparisons": [compare(
            "cdc_apply_seconds", med["apply_cdc"], med["raw_delta_rs_merge"],
            peer_name="raw delta-rs merge of the same batch on the same table (same run)", target="<= 1.2")],
        "note": "medians of interleaved runs, each on a fresh copy; apply_cdc also keeps the newest event per "
                "key, writes delete tombstones and checks them",
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
