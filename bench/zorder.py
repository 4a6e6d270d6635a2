"""Point lookup on customer_id: files whose stats may hold the key, before/after z-order."""

from __future__ import annotations

import time

from bench.harness import compare, scratch


def run() -> dict:
    import numpy as np
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    from include.lakehouse.maintenance.operations import files_for_point_lookup, z_order

    uri = str(scratch("zorder") / "orders")
    rng = np.random.default_rng(3)
    for batch in range(40):  # 40 appends of random customers: every file spans the key range
        n = 25_000
        write_deltalake(uri, pa.table({
            "order_id": pa.array(np.arange(batch * n, (batch + 1) * n), pa.int64()),
            "customer_id": pa.array(rng.integers(0, 100_000, n), pa.int64()),
            "amount": pa.array(rng.uniform(1, 500, n)),
        }), mode="append")
    probes = [int(x) for x in rng.integers(0, 100_000, 20)]
    before = sum(files_for_point_lookup(uri, "customer_id", p) for p in probes) / len(probes)
    started = time.perf_counter()
    result = z_order(uri, ["customer_id"], target_size_mb=1)
    seconds = time.perf_counter() - started
    after = sum(files_for_point_lookup(uri, "customer_id", p) for p in probes) / len(probes)
    return {"rows": 1_000_000, "files_before": 40, "files_after": len(DeltaTable(uri).file_uris()),
            "avg_files_scanned_before": before, "avg_files_scanned_after": after,
            "z_order_seconds": round(seconds, 3), "files_removed": result.files_removed,
            "comparisons": [compare("files scanned per point lookup", after, before, unit="files",
                                    peer_name="same table before z-order", target="< 0.1")]}
