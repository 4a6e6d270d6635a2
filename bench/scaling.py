"""Scaling curve of CDC apply and SCD2: delta-rs vs Spark engines, at growing table sizes.

For every engine and table size N: a target of N rows is set up (untimed, its own process),
then one batch of N/10 changes is applied in a fresh process (CDC: 60 % updates, 30 %
inserts, 10 % deletes, with redelivered duplicates; SCD2: tracked changes, a few late) and
measured: wall time of the process (imports and session start included, and the apply
alone), peak memory (the summed RSS of every process involved: the job, the Sail server or
the Spark master/workers/executors, sampled every 0.1 s), bytes read and written by those
processes (read/write syscalls: disk, sockets and pipes) and bytes added to the table.

Engines: `delta-rs` (the table layer, one process), `sail` (local Spark Connect engine with
Delta built in), `jvm` (classic local[2] JVM Spark, no Delta jars: the bridge), `cluster`
(a Spark standalone master and 2 one-core workers on loopback, bridge). Spark plans the batch
(spark/changes.py) and the table layer commits it. Sizes: BENCH_SCALING_SIZES (default
1000000), engines: BENCH_SCALING_ENGINES (default all four), operations: BENCH_SCALING_OPS
(default cdc,scd2). A growth fit (time and memory
as a*N^b over the sizes measured) per engine and operation is in the result.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from bench.harness import ROOT, compare, free_port, scratch

ENGINES = ("delta-rs", "sail", "jvm", "cluster")
OPS = ("cdc", "scd2")
CHANGE_FRACTION = 10  # a batch is N / 10 changes


# --------------------------------------------------------------------------- data
def _labels(prefix: str, codes):
    """Strings `<prefix><code>` as an Arrow array, built without a Python object per row."""
    import pyarrow as pa

    return pa.array([f"{prefix}{i}" for i in range(int(codes.max()) + 1)]).take(pa.array(codes))


def _setup(op: str, n: int) -> None:
    import numpy as np
    import pyarrow as pa

    from include.lakehouse.tables.delta import append

    at = pa.array(np.full(n, np.datetime64("2024-01-01T00:00:00", "us")), pa.timestamp("us", tz="UTC"))
    ids = pa.array(np.arange(n, dtype=np.int64))
    cities = _labels("city", np.arange(n) % 500)
    if op == "cdc":
        append("silver/customers", pa.table({"customer_id": ids, "name": cities, "city": cities,
                                              "_source_ts": at, "_cdc_sequence": ids}))
        return
    from include.lakehouse.dimensions.scd2 import apply_scd2

    apply_scd2("gold/dim_customer", pa.table({"customer_id": ids, "city": cities, "name": cities, "changed_at": at}),
               keys=["customer_id"], tracked=["city"], type1=["name"], surrogate_key="customer_sk")


def _changes(op: str, n: int):
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(7)
    m = n // CHANGE_FRACTION
    later = np.datetime64("2024-02-01T00:00:00", "us") + rng.integers(0, 86_400_000_000, m).astype("timedelta64[us]")
    if op == "cdc":
        kind = rng.random(m)
        keys = np.where(kind < 0.6, rng.integers(0, n, m), np.where(kind < 0.9, n + np.arange(m), rng.integers(0, n, m)))
        ops = np.where(kind < 0.6, "u", np.where(kind < 0.9, "c", "d"))
        dup = rng.integers(0, m, m // 100)  # redelivered events
        keys, ops, later = np.concatenate([keys, keys[dup]]), np.concatenate([ops, ops[dup]]), np.concatenate([later, later[dup]])
        seq = np.concatenate([n + 1 + np.arange(m), n + 1 + dup])
        city = _labels("moved", keys % 97)
        return pa.table({"customer_id": pa.array(keys, pa.int64()), "name": city, "city": city, "_source_ts": pa.array(later, pa.timestamp("us", tz="UTC")),
                         "_op": pa.array(ops.astype(object), pa.string()), "_lsn": pa.array(seq, pa.int64())})
    keys = rng.choice(n, m, replace=False)
    late = rng.random(m) < 0.01  # before the stored version's start: slotted into history
    when = np.where(late, np.datetime64("2023-12-01T00:00:00", "us"), later)
    city = _labels("moved", keys % 97)
    return pa.table({"customer_id": pa.array(keys, pa.int64()), "city": city, "name": city, "changed_at": pa.array(when, pa.timestamp("us", tz="UTC"))})


def _table_bytes(name: str) -> tuple[int, int]:
    import pyarrow as pa

    from include.lakehouse.tables.delta import open_table

    dt = open_table(name)
    return dt.version(), int(pa.table(dt.get_add_actions(flatten=True)).column("size_bytes").to_numpy().sum())


def _session(engine: str, target: str | None):
    from include.lakehouse.spark.session import get_spark

    if engine == "sail":
        return get_spark("bench_scaling", remote=target)
    memory = {"spark.driver.memory": "3g", "spark.sql.shuffle.partitions": "8"}
    if engine == "jvm":
        return get_spark("bench_scaling", master="local[2]", delta="bridge", conf=memory)
    return get_spark("bench_scaling", master=target, delta="bridge",
                     conf={**memory, "spark.executor.memory": "1500m", "spark.cores.max": "2"})


def child(engine: str, op: str, n: int, target: str | None) -> dict:
    """The measured process: build the batch, apply it on `engine`, report."""
    started = time.perf_counter()
    changes = _changes(op, n)
    spark = None if engine == "delta-rs" else _session(engine, target)
    ready = time.perf_counter()
    table = "silver/customers" if op == "cdc" else "gold/dim_customer"
    before = _table_bytes(table)
    if op == "cdc":
        options = dict(keys=["customer_id"], sequence_column="_lsn", op_column="_op", source_time_column="_source_ts",
                       transactions={"bench.scaling": 1})
        if spark is None:
            from include.lakehouse.cdc.apply import apply_cdc

            result = apply_cdc(table, changes, **options)
        else:
            from include.lakehouse.spark.changes import spark_apply_cdc

            result = spark_apply_cdc(spark, table, changes, **options)
    else:
        options = dict(keys=["customer_id"], tracked=["city"], type1=["name"], surrogate_key="customer_sk",
                       transactions={"bench.scaling": 1})
        if spark is None:
            from include.lakehouse.dimensions.scd2 import apply_scd2

            result = apply_scd2(table, changes, **options)
        else:
            from include.lakehouse.spark.changes import spark_apply_scd2

            result = spark_apply_scd2(spark, table, changes, **options)
    applied = time.perf_counter()
    after = _table_bytes(table)
    if spark is not None and engine != "sail":
        spark.stop()
    return {"changes": changes.num_rows, "apply_seconds": round(applied - ready, 3),
            "session_seconds": round(ready - started, 3), "rows_inserted": result.rows_inserted,
            "rows_updated": result.rows_updated, "rows_deleted": result.rows_deleted,
            "table_bytes_before": before[1], "table_bytes_after": after[1], "versions": after[0] - before[0]}


# --------------------------------------------------------------------------- measuring processes
class Sampler:
    """Peak summed RSS and read/write bytes of a set of process trees, sampled every 0.1 s."""

    def __init__(self, roots):
        import psutil

        self.psutil, self.roots, self.peak, self.io, self.running = psutil, roots, 0, {}, True
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _procs(self):
        seen = []
        for root in self.roots:
            try:
                proc = self.psutil.Process(root)
                seen += [proc] + proc.children(recursive=True)
            except self.psutil.Error:
                pass
        return seen

    def _loop(self):
        while self.running:
            rss = 0
            for proc in self._procs():
                try:
                    rss += proc.memory_info().rss
                    io = proc.io_counters()
                    self.io[proc.pid] = (io.read_chars, io.write_chars, io.read_bytes, io.write_bytes)
                except self.psutil.Error:
                    pass
            self.peak = max(self.peak, rss)
            time.sleep(0.1)

    def stop(self, baseline: dict) -> dict:
        self.running = False
        self.thread.join()
        totals = [0, 0, 0, 0]
        for pid, counters in self.io.items():
            base = baseline.get(pid, (0, 0, 0, 0))
            for i in range(4):
                totals[i] += counters[i] - base[i]
        return {"peak_rss_mib": round(self.peak / 2**20, 1), "read_mib": round(totals[0] / 2**20, 1),
                "written_mib": round(totals[1] / 2**20, 1), "disk_read_mib": round(totals[2] / 2**20, 1),
                "disk_written_mib": round(totals[3] / 2**20, 1)}


def _io_now(roots) -> dict:
    import psutil

    out = {}
    for root in roots:
        try:
            for proc in [psutil.Process(root)] + psutil.Process(root).children(recursive=True):
                io = proc.io_counters()
                out[proc.pid] = (io.read_chars, io.write_chars, io.read_bytes, io.write_bytes)
        except psutil.Error:
            pass
    return out


def _python(args: list[str], env: dict, roots: list[int] | None = None, timeout: float = 3600) -> tuple[dict, dict]:
    proc = subprocess.Popen([sys.executable, "-m", "bench.scaling", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, text=True, cwd=ROOT)
    watched = [proc.pid] + (roots or [])
    baseline = _io_now(roots or [])
    sampler = Sampler(watched)
    out, err = proc.communicate(timeout=timeout)
    usage = sampler.stop(baseline)
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"bench child {args} failed ({proc.returncode}): {err[-2000:]}")
    return json.loads(lines[-1][len("RESULT "):]), usage


def _start_cluster(folder: Path) -> tuple[str, list[subprocess.Popen]]:
    import pyspark

    home = Path(pyspark.__file__).parent
    port, ui = free_port(), free_port()
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOG_DIR": str(folder), "SPARK_WORKER_DIR": str(folder / "work"),
           "PYSPARK_PYTHON": sys.executable, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    spark_class = str(home / "bin" / "spark-class")
    procs = [subprocess.Popen([spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                               "--port", str(port), "--webui-port", str(ui)], env=env,
                              stdout=(folder / "master.log").open("w"), stderr=subprocess.STDOUT)]
    for i in range(2):
        procs.append(subprocess.Popen([spark_class, "org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}",
                                       "--cores", "1", "--memory", "2g", "--webui-port", str(free_port()),
                                       "--host", "127.0.0.1"], env=env,
                                      stdout=(folder / f"worker{i}.log").open("w"), stderr=subprocess.STDOUT))
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=2) as r:
                if json.load(r).get("aliveworkers", 0) >= 2:
                    return f"spark://127.0.0.1:{port}", procs
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError(f"the standalone cluster did not come up; see {folder}")


def _fit(points: list[tuple[int, float]]) -> dict | None:
    """value = a * N^b by least squares on logs (needs two sizes)."""
    points = [(n, v) for n, v in points if v and v > 0]
    if len(points) < 2:
        return None
    xs, ys = [math.log(n) for n, _ in points], [math.log(v) for _, v in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    a = math.exp(my - b * mx)
    return {"a": a, "exponent": round(b, 3), "at_1e9": round(a * 1e9 ** b, 1), "at_1e10": round(a * 1e10 ** b, 1)}


def run() -> dict:
    from scripts import spark_engine

    sizes = [int(s) for s in os.environ.get("BENCH_SCALING_SIZES", "1000000").split(",")]
    engines = [e for e in os.environ.get("BENCH_SCALING_ENGINES", ",".join(ENGINES)).split(",") if e]
    ops = [o for o in os.environ.get("BENCH_SCALING_OPS", ",".join(OPS)).split(",") if o]
    work = scratch("scaling")
    runs, notes = [], []
    for engine in engines:
        infra, target = [], None
        if engine == "sail":
            port = free_port()
            infra = [spark_engine.start("sail", port, work / "sail.log")]
            target = spark_engine.url(port)
        elif engine == "cluster":
            target, infra = _start_cluster(work)
        try:
            for n in sizes:
                for op in ops:
                    root = work / f"{engine}-{op}-{n}"
                    env = {**os.environ, "LAKEHOUSE_ROOT": str(root), "PYTHONPATH": str(ROOT), "PYSPARK_PYTHON": sys.executable}
                    _python(["setup", op, str(n)], env)
                    try:
                        result, usage = _python(["child", engine, op, str(n), target or ""], env,
                                                roots=[p.pid for p in infra])
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        notes.append(f"{engine} {op} {n}: {str(exc)[-400:]}")
                        continue
                    runs.append({"engine": engine, "op": op, "rows": n, **result, **usage})
                    print(json.dumps(runs[-1]), flush=True)
                    subprocess.run(["rm", "-rf", str(root)])
        finally:
            for proc in infra:
                if engine == "sail":
                    spark_engine.stop(proc)
                else:
                    proc.terminate()
                    proc.wait(timeout=60)
    fits = {}
    for engine in engines:
        for op in OPS:
            mine = [r for r in runs if r["engine"] == engine and r["op"] == op]
            fits[f"{engine}/{op}"] = {"seconds": _fit([(r["rows"], r["apply_seconds"]) for r in mine]),
                                      "peak_rss_mib": _fit([(r["rows"], r["peak_rss_mib"]) for r in mine])}
    comparisons = []
    for r in runs:
        peer = next((p for p in runs if p["engine"] == "delta-rs" and p["op"] == r["op"] and p["rows"] == r["rows"]), None)
        if peer and r["engine"] != "delta-rs":
            comparisons.append(compare(f"{r['op']} apply of {r['changes']} changes into {r['rows']} rows on {r['engine']}",
                                       r["apply_seconds"], peer["apply_seconds"], peer_name="delta-rs",
                                       target="informational: Spark is for tables past one machine"))
    return {"sizes": sizes, "engines": engines, "change_fraction": 1 / CHANGE_FRACTION, "runs": runs, "fits": fits,
            "comparisons": comparisons, "notes": notes, "cores": os.cpu_count(),
            "load_average_at_end": os.getloadavg()}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "setup":
        _setup(sys.argv[2], int(sys.argv[3]))
        print("RESULT {}")
    elif len(sys.argv) > 1 and sys.argv[1] == "child":
        print("RESULT " + json.dumps(child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] or None)), flush=True)
    else:
        print(json.dumps(run(), indent=1))
