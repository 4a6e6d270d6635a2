"""Sail vs JVM Spark Connect in one run: engine start to first answer, a warm trivial task
(session + query on a running server) and customer_features for one date; picks the default."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from bench.harness import ROOT, compare, free_port, scratch


def shop_lakehouse(root: Path, days: int = 120) -> list[str]:
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


def engine_child(engine: str, port: int, root: str, dates: list[str]) -> dict:
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


def run() -> dict:
    """Sail vs JVM Spark Connect in one run: engine start to first answer, a warm trivial task
    (session + query on a running server) and customer_features for one date; picks the default."""
    results = {}
    for engine in ("sail", "jvm"):
        root = scratch(f"engine-{engine}")
        dates = shop_lakehouse(root)
        port = free_port()
        code = (f"import sys, json; sys.path[:0] = {[str(ROOT)]!r}\n"
                f"from bench import spark_engines as b; print(json.dumps(b.engine_child({engine!r}, {port}, "
                f"{str(root)!r}, {dates!r})))\n")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**os.environ, "LAKEHOUSE_SPARK_DELTA": "auto"})
        if out.returncode:
            raise RuntimeError(f"{engine} engine bench failed:\n{out.stderr[-3000:]}")
        results[engine] = json.loads(out.stdout.strip().splitlines()[-1])
    sail, jvm = results["sail"], results["jvm"]
    ratios = {k: round(jvm[k] / sail[k], 1) for k in
              ("start_to_first_answer_seconds", "trivial_task_seconds", "customer_features_one_date_seconds")}
    comparisons = [compare(k.replace("_seconds", "").replace("_", " "), sail[k], jvm[k], peer_name="JVM Spark Connect",
                           target="< 1 (the default engine is the faster one)") for k in ratios]
    return {**results, "jvm_over_sail": ratios, "comparisons": comparisons,
            "targets_on_default": {"start_to_first_answer_seconds": 1.5, "trivial_task_seconds": 0.6,
                                   "customer_features_one_date_seconds": 0.3},
            "default": min(results, key=lambda e: results[e]["customer_features_one_date_seconds"]),
            "note": "each engine in a fresh process, demo-size shop (120 days, scale 1); Sail reads and writes "
                    "Delta natively, JVM Spark (no jars here) through the bridge; medians"}
