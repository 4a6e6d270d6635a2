"""Cold spark-submit vs a task process talking to a warm Spark Connect server (JVM Spark)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import compare, free_port, median, scratch

TRIVIAL_JOB = "from pyspark.sql import SparkSession\nSparkSession.builder.getOrCreate().range(1000).count()\n"


def run() -> dict:
    from scripts import localenv, spark_engine

    env = {**os.environ, **localenv.airflow_env(home=scratch("spark-airflow"))}
    job = scratch("spark-job") / "trivial.py"
    job.write_text(TRIVIAL_JOB)
    bin_dir = Path(sys.executable).parent

    def timed(cmd):
        started = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        return time.perf_counter() - started

    cold = [timed([str(bin_dir / "spark-submit"), "--master", "local[*]", str(job)]) for _ in range(2)]
    port = free_port()
    started = time.perf_counter()
    server = spark_engine.start("jvm", port, scratch("spark-connect") / "jvm-connect.log", env=env)
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
            "comparisons": [compare("trivial task", median(warm, 2), median(cold, 2),
                                    peer_name="cold spark-submit local[*]")],
            "note": "warm Spark Connect for local[*] (make demo / make ui start the server); which engine: see "
                    "spark_engines"}
