"""CDC apply of 100k change events (60k updates, 20k inserts, 20k deletes) into 1M rows."""

from __future__ import annotations

import time

from bench.harness import scratch


def run() -> dict:
    import numpy as np
    import pyarrow as pa
    from deltalake import write_deltalake

    from include.lakehouse.cdc.apply import apply_cdc

    uri = str(scratch("cdc") / "orders")
    n = 1_000_000
    write_deltalake(uri, pa.table({
        "order_id": pa.array(np.arange(n), pa.int64()), "status": pa.array(["placed"] * n),
        "amount": pa.array(np.random.default_rng(1).uniform(1, 500, n)),
        "_cdc_sequence": pa.array(np.ones(n, dtype=np.int64)),
    }))
    rng = np.random.default_rng(2)
    updates = rng.choice(n, 60_000, replace=False)
    deletes = np.setdiff1d(rng.choice(n, 30_000, replace=False), updates)[:20_000]
    inserts = np.arange(n, n + 20_000)
    ids = np.concatenate([updates, deletes, inserts])
    ops = ["u"] * len(updates) + ["d"] * len(deletes) + ["c"] * len(inserts)
    changes = pa.table({
        "order_id": pa.array(ids, pa.int64()), "status": pa.array(["shipped"] * len(ids)),
        "amount": pa.array(rng.uniform(1, 500, len(ids))), "op": pa.array(ops),
        "lsn": pa.array(np.arange(10, 10 + len(ids)), pa.int64()),
    })
    started = time.perf_counter()
    result = apply_cdc(uri, changes, keys=["order_id"], sequence_column="lsn")
    seconds = time.perf_counter() - started
    return {"rows_before": n, "events": len(ids), "seconds": round(seconds, 3),
            "events_per_second": round(len(ids) / seconds), "inserted": result.rows_inserted,
            "updated": result.rows_updated, "deleted": result.rows_deleted}
