"""Peak RSS of a 100k-row merge-upsert into a 10M-row table, in a fresh process."""

from __future__ import annotations

import subprocess
import sys

from bench.harness import ROOT, compare, scratch


def merge_10m(uri: str) -> None:
    import numpy as np
    import pyarrow as pa

    from include.lakehouse.tables.delta import merge_upsert

    rng = np.random.default_rng(4)
    keys = np.concatenate([rng.choice(10_000_000, 90_000, replace=False), np.arange(10_000_000, 10_010_000)])
    merge_upsert(uri, pa.table({"id": pa.array(keys, pa.int64()), "v": pa.array(rng.uniform(0, 1, len(keys)))}),
                 keys=["id"])


def run() -> dict:
    """Peak RSS of a 100k-row merge-upsert into a 10M-row table, in a fresh process."""
    import numpy as np
    import pyarrow as pa
    from deltalake import write_deltalake

    root = scratch("merge")
    uri = str(root / "big")
    for part in range(10):
        ids = np.arange(part * 1_000_000, (part + 1) * 1_000_000)
        write_deltalake(uri, pa.table({"id": pa.array(ids, pa.int64()), "v": pa.array(np.zeros(len(ids)))}),
                        mode="append")
    code = (f"import sys, time; sys.path[:0] = {[str(ROOT)]!r}\n"
            f"import resource; from bench import merge_memory as b; t = time.perf_counter(); b.merge_10m({uri!r})\n"
            f"print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    seconds, peak_kib = out.stdout.strip().splitlines()[-1].split()
    return {"rows": 10_000_000, "source_rows": 100_000, "seconds": round(float(seconds), 2),
            "peak_rss_mib": round(int(peak_kib) / 1024, 1), "target_peak_mib": 2048,
            "comparisons": [compare("peak RSS of the merge process", int(peak_kib) / 1024, 2048, unit="MiB",
                                    peer_name="memory budget (2 GiB)", target="< 1")]}
