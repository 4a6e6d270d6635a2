"""Benchmarks of the lakehouse (`make bench`): results go to bench/results/<name>.json and
bench/results/latest.md. Targets are recorded next to the numbers; they are not asserted.

    python bench/run.py                 # everything
    python bench/run.py parse scd2      # a subset: parse scd2 cdc zorder small_files kafka spark spark_engines merge_memory ml formats
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from scripts import localenv  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def bench_parse() -> dict:
    """DagBag parse time per DAG file, measured inside one process (Airflow's own stats)."""
    home = Path(tempfile.mkdtemp(prefix="bench-airflow-"))
    localenv.apply(localenv.airflow_env(home=home))
    from airflow.dag_processing.dagbag import DagBag

    def per_file(bag):
        return {Path(s.file).name: round(s.duration.total_seconds(), 4) for s in bag.dagbag_stats}

    cold = per_file(DagBag(str(ROOT / "dags")))  # first parse pays for shared imports (sdk, providers)
    warm = per_file(DagBag(str(ROOT / "dags")))  # what the dag-processor pays on every re-parse
    cosmos = {"dbt_transform_cold_seconds": cold.get("dbt_transform.py"),
              "dbt_transform_warm_seconds": warm.get("dbt_transform.py"),
              "dbt_transform_target_seconds": 0.5,
              "note": "cold pays the first import of cosmos; the dag-processor pre-imports a DAG file's "
                      "modules before forking (parsing_pre_import_modules), so re-parses cost the warm time"}
    return {"cold_per_file_seconds": cold, "warm_per_file_seconds": warm, "cosmos": cosmos,
            "cold_total_seconds": round(sum(cold.values()), 4), "warm_total_seconds": round(sum(warm.values()), 4),
            "target": "each file < 1 s (Airflow's dagbag_import_timeout is 30 s)"}


def _scd2_setup(root: Path, keys: int, doubled: int):
    import pyarrow as pa

    from include.lakehouse.dimensions.scd2 import apply_scd2

    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    ids = list(range(keys))
    initial = pa.table({
        "customer_id": pa.array(ids, pa.int64()),
        "city": pa.array([f"city{i % 500}" for i in ids]),
        "name": pa.array([f"name{i}" for i in ids]),
        "changed_at": pa.array([base] * keys, pa.timestamp("us", tz="UTC")),
    })
    kw = dict(keys=["customer_id"], tracked=["city"], type1=["name"], surrogate_key="customer_sk")
    uri = str(root / "dim_customer")
    apply_scd2(uri, initial, **kw)
    second = pa.table({
        "customer_id": pa.array(ids[:doubled], pa.int64()),
        "city": pa.array([f"moved{i % 300}" for i in ids[:doubled]]),
        "name": pa.array([f"name{i}" for i in ids[:doubled]]),
        "changed_at": pa.array([base + timedelta(days=10)] * doubled, pa.timestamp("us", tz="UTC")),
    })
    apply_scd2(uri, second, **kw)
    return uri, kw, base


def bench_scd2() -> dict:
    """SCD2 apply of 150k changes (10% of them late-arriving) into 1.1M rows."""
    import pyarrow as pa
    from deltalake import DeltaTable

    from include.lakehouse.dimensions.scd2 import apply_scd2

    root = Path(tempfile.mkdtemp(prefix="bench-scd2-"))
    uri, kw, base = _scd2_setup(root, 1_000_000, 100_000)
    rows_before = DeltaTable(uri).count()
    n, late = 150_000, 15_000
    ids = list(range(200_000, 200_000 + n - late)) + list(range(late))  # late: keys with 2 versions
    times = [base + timedelta(days=20)] * (n - late) + [base + timedelta(days=5)] * late
    changes = pa.table({
        "customer_id": pa.array(ids, pa.int64()), "city": pa.array([f"new{i % 700}" for i in ids]),
        "name": pa.array([f"name{i}" for i in ids]), "changed_at": pa.array(times, pa.timestamp("us", tz="UTC")),
    })
    import shutil
    import statistics

    import include.lakehouse.dimensions.scd2 as scd

    source, _ = scd.plan_merge(changes, DeltaTable(uri), ["customer_id"], ["city"], ["name"], "changed_at", None,
                          "customer_sk")
    ours, raw = [], []
    for run in range(3):  # each run on fresh copies of the same table; the median is recorded
        mine, reference = str(root / f"run{run}"), str(root / f"reference{run}")
        shutil.copytree(uri, mine)
        shutil.copytree(uri, reference)
        started = time.perf_counter()
        result = apply_scd2(mine, changes, **kw)
        ours.append(time.perf_counter() - started)
        # the same merge, rows precomputed, straight on delta-rs: what this machine does right now
        started = time.perf_counter()
        (DeltaTable(reference).merge(source, predicate="t.customer_sk = s.customer_sk", source_alias="s",
                                     target_alias="t", streamed_exec=True)
         .when_matched_delete(predicate="s.__action = 'delete'")
         .when_matched_update_all(predicate="s.__action = 'upsert'", except_cols=["__action"])
         .when_not_matched_insert_all(predicate="s.__action = 'upsert'", except_cols=["__action"]).execute())
        raw.append(time.perf_counter() - started)
    seconds, raw_seconds = statistics.median(ours), statistics.median(raw)
    return {"rows_before": rows_before, "changes": n, "late": result.details["late"], "seconds": round(seconds, 3),
            "runs_seconds": [round(x, 3) for x in ours], "changes_per_second": round(n / seconds),
            "inserted": result.rows_inserted, "updated": result.rows_updated, "target_seconds": 1.0,
            "raw_delta_rs_merge_seconds": round(raw_seconds, 3), "overhead_seconds": round(seconds - raw_seconds, 3),
            "delta_rs_reference_seconds": 0.6,
            "note": "median of 3 runs on fresh copies; target 1 s assumes delta-rs merges in 0.6 s; "
                    "raw_delta_rs_merge_seconds is this machine's own merge of the same rows, same runs"}


def bench_cdc() -> dict:
    """CDC apply of 100k change events (60k updates, 20k inserts, 20k deletes) into 1M rows."""
    import numpy as np
    import pyarrow as pa
    from deltalake import write_deltalake

    from include.lakehouse.cdc.apply import apply_cdc

    root = Path(tempfile.mkdtemp(prefix="bench-cdc-"))
    uri = str(root / "orders")
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
    return {"rows_before": n, "events": len(ids), "seconds": round(seconds, 3), "events_per_second": round(len(ids) / seconds),
            "inserted": result.rows_inserted,
            "updated": result.rows_updated, "deleted": result.rows_deleted, "target_seconds": 0.6,
            "delta_rs_reference_seconds": 0.3}


def bench_zorder() -> dict:
    """Point lookup on customer_id: files whose stats may hold the key, before/after z-order."""
    import numpy as np
    import pyarrow as pa
    from deltalake import write_deltalake

    from include.lakehouse.maintenance.operations import files_for_point_lookup, z_order

    root = Path(tempfile.mkdtemp(prefix="bench-zorder-"))
    uri = str(root / "orders")
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
    from deltalake import DeltaTable

    return {"rows": 1_000_000, "files_before": 40, "files_after": len(DeltaTable(uri).file_uris()),
            "avg_files_scanned_before": before, "avg_files_scanned_after": after,
            "z_order_seconds": round(seconds, 3), "files_removed": result.files_removed}


def bench_small_files() -> dict:
    """A query over 300 small appends vs the same table after compaction."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable, write_deltalake

    from include.lakehouse.maintenance.operations import compact

    uri = str(Path(tempfile.mkdtemp(prefix="bench-small-")) / "events")
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
        return sorted(runs)[len(runs) // 2]

    before, files_before = query(), len(DeltaTable(uri).file_uris())
    result = compact(uri)
    after, files_after = query(), len(DeltaTable(uri).file_uris())
    return {"rows": 150_000, "files_before": files_before, "files_after": files_after,
            "query_seconds_before": round(before, 4), "query_seconds_after": round(after, 4),
            "speedup": round(before / after, 1), "compact_seconds": result.seconds}


def bench_kafka() -> dict:
    """Messages per second from a topic (3 partitions) into bronze, through the embedded broker."""
    import json as _json
    import socket

    from confluent_kafka import Producer

    from include.lakehouse.ingest.kafka import ingest_topic
    from scripts import kafka_broker

    os.environ["LAKEHOUSE_ROOT"] = tempfile.mkdtemp(prefix="bench-kafka-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = kafka_broker.start(port, Path(os.environ["LAKEHOUSE_ROOT"]) / "kafka.log")
    try:
        config = kafka_broker.client_config(port)
        producer = Producer(config)
        n = 100_000
        for i in range(n):
            producer.produce("shop.order_events", key=str(i % 997), value=_json.dumps({"n": i, "pad": "x" * 100}))
            if i % 10_000 == 0:
                producer.poll(0)
        producer.flush(60)
        started = time.perf_counter()
        result = ingest_topic("shop.order_events", config, max_messages=n)
        seconds = time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return {"messages": result["rows_inserted"], "seconds": round(seconds, 2),
            "messages_per_second": round(result["rows_inserted"] / seconds),
            "note": "all 3 partitions read at once, each until the client reports its end"}


TRIVIAL_JOB = "from pyspark.sql import SparkSession\nSparkSession.builder.getOrCreate().range(1000).count()\n"


def bench_spark() -> dict:
    """Cold spark-submit vs a task process talking to a warm Spark Connect server."""
    import socket

    env = {**os.environ, **localenv.airflow_env(home=Path(tempfile.mkdtemp(prefix="bench-spark-")))}
    job = Path(tempfile.mkdtemp()) / "trivial.py"
    job.write_text(TRIVIAL_JOB)
    bin_dir = Path(sys.executable).parent

    def timed(cmd):
        started = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        return time.perf_counter() - started

    cold = [timed([str(bin_dir / "spark-submit"), "--master", "local[*]", str(job)]) for _ in range(2)]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from scripts import spark_engine

    started = time.perf_counter()
    server = spark_engine.start("jvm", port, Path(tempfile.mkdtemp()) / "jvm-connect.log", env=env)
    try:
        server_start = time.perf_counter() - started
        client = (f"from pyspark.sql import SparkSession\n"
                  f"SparkSession.builder.remote('sc://127.0.0.1:{port}').getOrCreate().range(1000).count()\n")
        warm = [timed([sys.executable, "-c", client]) for _ in range(3)]
    finally:
        spark_engine.stop(server)
    return {"cold_spark_submit_seconds": [round(x, 2) for x in cold],
            "warm_connect_task_seconds": [round(x, 2) for x in warm],
            "connect_server_start_seconds": round(server_start, 2),
            "default": "warm Spark Connect for local[*] (make demo / make ui start the server); "
                       "which engine: see spark_engines"}


def _shop_lakehouse(root: Path, days: int = 120) -> list[str]:
    """silver/orders and gold/dim_customer of the demo shop (scale 1), as the feature job reads them."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from include.lakehouse.dimensions.scd2 import apply_scd2
    from include.lakehouse.source.generator import ShopSource

    os.environ["LAKEHOUSE_ROOT"] = str(root / "lakehouse")
    shop, start = ShopSource(scale=1.0), datetime(2024, 1, 1).date()
    dates = [(start + timedelta(days=n)).isoformat() for n in range(days)]
    write_deltalake(str(root / "lakehouse" / "silver" / "orders"), pa.concat_tables([shop.orders(d) for d in dates]))
    apply_scd2(str(root / "lakehouse" / "gold" / "dim_customer"), shop.customers(dates[-1]), keys=["customer_id"],
               tracked=["city", "country", "segment", "email"], type1=["name"], effective_column="updated_at",
               surrogate_key="customer_sk")
    return dates


def _engine_child(engine: str, port: int, root: str, dates: list[str]) -> dict:
    """In a fresh process (a Connect session makes pyspark refuse classic ones): start the
    engine, then time first answer, trivial tasks and the feature job against it."""
    import statistics

    from pyspark.sql import SparkSession

    from include.lakehouse.ml.features import build_features
    from include.lakehouse.spark.session import get_spark, native_delta
    from scripts import spark_engine

    os.environ["LAKEHOUSE_ROOT"] = str(Path(root) / "lakehouse")
    spark = None
    t = time.perf_counter()
    import pyspark.sql.connect.session  # noqa: F401 - the client's imports: a task pays them, not the engine

    client_import = time.perf_counter() - t
    started = time.perf_counter()
    server = spark_engine.start(engine, port, Path(root) / f"{engine}.log")
    try:
        listening = time.perf_counter() - started
        url = spark_engine.url(port)
        spark = SparkSession.builder.remote(url).getOrCreate()
        spark.range(1).count()
        first_answer = time.perf_counter() - started
        trivial = []
        for _ in range(5):  # what a task pays on a warm server: its own session, a query, release
            t = time.perf_counter()
            spark = get_spark("trivial", remote=url)
            spark.range(1000).count()
            spark.stop()
            trivial.append(time.perf_counter() - t)
        spark = get_spark("customer_features", remote=url)
        build_features(spark, [dates[80]])  # warm-up: first reads, plans
        features = []
        for day in dates[86:89]:
            t = time.perf_counter()
            built = build_features(spark, [day])
            features.append(time.perf_counter() - t)
        return {"engine": engine, "delta": "native" if native_delta(spark) else "bridge",
                "client_import_seconds": round(client_import, 3),
                "listening_seconds": round(listening, 3), "start_to_first_answer_seconds": round(first_answer, 3),
                "trivial_task_seconds": round(statistics.median(trivial), 3),
                "trivial_task_runs": [round(x, 3) for x in trivial],
                "customer_features_one_date_seconds": round(statistics.median(features), 3),
                "customer_features_runs": [round(x, 3) for x in features],
                "feature_rows": built["rows_inserted"]}
    finally:
        # release the session while the server still answers: a client whose server is gone
        # retries its release at exit for minutes
        if spark is not None:
            spark.stop()
        spark_engine.stop(server)


def bench_spark_engines() -> dict:
    """Sail vs JVM Spark Connect in one run: engine start to first answer, a warm trivial task
    (session + query on a running server) and customer_features for one date; picks the default."""
    import socket

    results = {}
    for engine in ("sail", "jvm"):
        root = Path(tempfile.mkdtemp(prefix=f"bench-engine-{engine}-"))
        dates = _shop_lakehouse(root)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        code = (f"import sys, json; sys.path[:0] = {[str(ROOT), str(ROOT / 'bench')]!r}\n"
                f"import run; print(json.dumps(run._engine_child({engine!r}, {port}, {str(root)!r}, {dates!r})))\n")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**os.environ, "LAKEHOUSE_SPARK_DELTA": "auto"})
        if out.returncode:
            raise RuntimeError(f"{engine} engine bench failed:\n{out.stderr[-3000:]}")
        results[engine] = json.loads(out.stdout.strip().splitlines()[-1])
    sail, jvm = results["sail"], results["jvm"]
    ratios = {k: round(jvm[k] / sail[k], 1) for k in
              ("start_to_first_answer_seconds", "trivial_task_seconds", "customer_features_one_date_seconds")}
    return {**results, "jvm_over_sail": ratios,
            "targets_on_default": {"start_to_first_answer_seconds": 1.5, "trivial_task_seconds": 0.6,
                                   "customer_features_one_date_seconds": 0.3},
            "default": min(results, key=lambda e: results[e]["customer_features_one_date_seconds"]),
            "note": "each engine in a fresh process, demo-size shop (120 days, scale 1); Sail reads and writes "
                    "Delta natively, JVM Spark (no jars here) through the bridge; medians"}


def _merge_10m(uri: str) -> None:
    import numpy as np
    import pyarrow as pa

    from include.lakehouse.tables.delta import merge_upsert

    rng = np.random.default_rng(4)
    keys = np.concatenate([rng.choice(10_000_000, 90_000, replace=False), np.arange(10_000_000, 10_010_000)])
    merge_upsert(uri, pa.table({"id": pa.array(keys, pa.int64()), "v": pa.array(rng.uniform(0, 1, len(keys)))}),
                 keys=["id"])


def bench_merge_memory() -> dict:
    """Peak RSS of a 100k-row merge-upsert into a 10M-row table, in a fresh process."""
    import numpy as np
    import pyarrow as pa
    from deltalake import write_deltalake

    root = Path(tempfile.mkdtemp(prefix="bench-merge-"))
    uri = str(root / "big")
    for part in range(10):
        ids = np.arange(part * 1_000_000, (part + 1) * 1_000_000)
        write_deltalake(uri, pa.table({"id": pa.array(ids, pa.int64()), "v": pa.array(np.zeros(len(ids)))}),
                        mode="append")
    code = (f"import sys, time; sys.path[:0] = {[str(ROOT)]!r}; sys.path.insert(0, {str(ROOT / 'bench')!r})\n"
            f"import resource, run; t = time.perf_counter(); run._merge_10m({uri!r})\n"
            f"print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    seconds, peak_kib = out.stdout.strip().splitlines()[-1].split()
    return {"rows": 10_000_000, "source_rows": 100_000, "seconds": round(float(seconds), 2),
            "peak_rss_mib": round(int(peak_kib) / 1024, 1), "target_peak_mib": 2048}


def bench_ml() -> dict:
    """Feature build (Spark, local[2]) for one as-of date over 120 days of shop orders, and
    batch inference rows scored per second with the registered champion, beside the rows
    explained per second (SHAP TreeExplainer, additivity-checked)."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from include.lakehouse.dimensions.scd2 import apply_scd2
    from include.lakehouse.ml import inference, training
    from include.lakehouse.ml.features import build_features
    from include.lakehouse.source.generator import ShopSource
    from include.lakehouse.spark.session import get_spark

    root = Path(tempfile.mkdtemp(prefix="bench-ml-"))
    os.environ.update({"LAKEHOUSE_ROOT": str(root / "lakehouse"),
                       "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
                       "LAKEHOUSE_MLFLOW_ARTIFACTS": (root / "artifacts").as_uri()})
    shop, start = ShopSource(scale=1.0), datetime(2024, 1, 1).date()
    days = [(start + timedelta(days=n)).isoformat() for n in range(120)]
    orders = pa.concat_tables([shop.orders(d) for d in days])
    write_deltalake(str(root / "lakehouse" / "silver" / "orders"), orders)
    apply_scd2(str(root / "lakehouse" / "gold" / "dim_customer"), shop.customers(days[-1]), keys=["customer_id"],
               tracked=["city", "country", "segment", "email"], type1=["name"], effective_column="updated_at",
               surrogate_key="customer_sk")
    spark = get_spark("bench_ml", master="local[2]")
    build_features(spark, [days[80]])  # warm-up: JVM, first reads
    started = time.perf_counter()
    built = build_features(spark, [days[88]])
    feature_seconds = time.perf_counter() - started
    build_features(spark, [days[-1]])
    trained = training.train(days[88])
    scored = inference.score(days[-1])
    return {"orders": orders.num_rows, "feature_rows": built["rows_inserted"],
            "feature_build_seconds": round(feature_seconds, 3), "holdout_auc": trained["holdout_auc"],
            "rows_scored": scored["rows_inserted"], "rows_scored_per_second": scored["scored_per_second"],
            "rows_explained_per_second": scored["explained_per_second"],
            "explanation_rows_written": scored["explanations"],
            "max_additivity_error": scored["max_additivity_error"],
            "note": "feature build: one as-of date in a warm local[2] session; scoring per second: the serving path "
                    "(model load, scoring, writes) as before; explanations per second: the SHAP step alone"}


def bench_formats() -> dict:
    """Delta vs Iceberg vs Hudi at 1M rows (median of 3): the multi-format week's figures, with
    ops/format_benchmark rows and the report in .local/reports/formats/ (a scratch lakehouse)."""
    from include.lakehouse.formats.benchmark import run

    rows = int(os.environ.get("BENCH_FORMATS_ROWS", 1_000_000))
    before = os.environ.get("LAKEHOUSE_ROOT")
    with tempfile.TemporaryDirectory(prefix="bench-formats-") as root:
        os.environ["LAKEHOUSE_ROOT"] = str(Path(root) / "lakehouse")
        try:
            result = run(rows, repeats=3, report_dir=ROOT / ".local" / "reports" / "formats", record=False)
        finally:
            os.environ.pop("LAKEHOUSE_ROOT", None) if before is None else os.environ.update(LAKEHOUSE_ROOT=before)
    figures = {f"{r['format']}.{r['operation']}": {"seconds": r["seconds"], "files_scanned": r["files_scanned"],
                                                   "bytes_written": r["bytes_written"]} for r in result["results"]}
    return {"rows": rows, "repeats": 3, "report": result["report"], "figures": figures}


BENCHES = {"parse": bench_parse, "scd2": bench_scd2, "cdc": bench_cdc, "zorder": bench_zorder,
           "small_files": bench_small_files, "kafka": bench_kafka,
           "spark": bench_spark, "spark_engines": bench_spark_engines, "merge_memory": bench_merge_memory,
           "ml": bench_ml, "formats": bench_formats}


def main(argv: list[str]) -> int:
    chosen = argv or list(BENCHES)
    unknown = [n for n in chosen if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {list(BENCHES)}", file=sys.stderr)
        return 2
    results = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
               "started": datetime.now(timezone.utc).isoformat(), "results": {}}
    for name in chosen:
        print(f"bench {name} ...", flush=True)
        results["results"][name] = BENCHES[name]()
        print(json.dumps(results["results"][name], indent=2), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{stamp}.json"
    path.write_text(json.dumps(results, indent=2))
    latest = RESULTS / "latest.json"
    merged = json.loads(latest.read_text()) if latest.exists() else {"results": {}}
    merged["results"].update(results["results"])
    merged.update({k: v for k, v in results.items() if k != "results"})
    latest.write_text(json.dumps(merged, indent=2))
    print(f"results: {path} (merged into {latest})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
