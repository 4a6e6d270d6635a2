"""A query over 300 small appends vs the same table after compaction."""

from __future__ import annotations

import time

from bench.harness import compare, median, scratch


def run() -> dict:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable, write_deltalake

    from include.lakehouse.maintenance.operations import compact

    uri = str(scratch("small") / "events")
    rng = np.random.default_rng(5)
    for batch in range(300):
        write_deltalake(uri, pa.table({"id": pa.array(np.arange(batch * 500, (batch + 1) * 500), pa.int64()),
                                       "kind": pa.array(rng.choice(["a", "b", "c"], 500)),
                                       "value": pa.array(rng.uniform(0, 1, 500))}), mode="append")

    def query() -> float:
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            data = DeltaTable(uri).to_pyarrow_dataset().to_table(filter=pc.field("kind") == "a", columns=["value"])
            pc.sum(data.column("value"))
            runs.append(time.perf_counter() - started)
        return median(runs)

    before, files_before = query(), len(DeltaTable(uri).file_uris())
    result = compact(uri)
    after, files_after = query(), len(DeltaTable(uri).file_uris())
    return {"rows": 150_000, "files_before": files_before, "files_after": files_after,
            "query_seconds_before": before, "query_seconds_after": after,
            "speedup": round(before / after, 1), "compact_seconds": result.seconds,
            "comparisons": [compare("filtered aggregate query", after, before,
                                    peer_name="same table as 300 small files", target="< 0.2")]}
