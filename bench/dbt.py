"""dbt through Cosmos against plain dbt, same project, same data, same run (issue #18).

Peer: `dbt source freshness` then `dbt build` of include/dbt, the dbt CLI as a user runs it.
Project: dbt_transform (Cosmos WATCHER: one producer task runs the build, one sensor task per
source, model and model's tests) triggered through the REST API of a real api-server, scheduler,
dag-processor and triggerer (LocalExecutor); its DAG-run wall time, and the span of its dbt
tasks alone (first dbt task start to last dbt task end). Target: DAG run <= 3x the peer.

    python -m bench.run dbt        # through the harness (bench/results/dbt.json, latest.md)
The shop data: a few days of the demo shop through the real CDC and SCD2 path (silver tables and
gold/dim_customer as cdc_apply and scd2_dimensions leave them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from bench.harness import ROOT, compare, free_port, scratch

DAYS = ["2024-01-01", "2024-01-02", "2024-01-03"]
SCALE = 0.5
TARGET_RATIO = 3.0


def build_sources(root: Path) -> dict[str, int]:
    """silver/customers, orders, products and gold/dim_customer of the shop under `root`."""
    import pyarrow as pa

    os.environ["LAKEHOUSE_ROOT"] = str(root)
    from include.lakehouse.cdc.flow import apply_bronze_changes
    from include.lakehouse.dimensions.build import build_dimension
    from include.lakehouse.source.generator import ShopSource
    from include.lakehouse.tables.delta import append, try_open

    shop, offsets = ShopSource(scale=SCALE), {}
    feeds = {"customers": shop.customer_changes, "orders": shop.order_changes, "products": shop.product_changes}
    for day in DAYS:
        for table, changes in feeds.items():
            topic, envelopes = f"shop.public.{table}", changes(day)
            if envelopes:
                start = offsets.get(topic, 0)
                append(f"bronze/{topic}", pa.table({
                    "key": [json.dumps(e["after"] or e["before"]) for e in envelopes],
                    "partition": pa.array([0] * len(envelopes), pa.int32()),
                    "offset": pa.array(range(start, start + len(envelopes)), pa.int64()),
                    "payload": [json.dumps(e) for e in envelopes], "tombstone": [False] * len(envelopes),
                }), app_id=f"bench.{topic}.{day}")
                offsets[topic] = start + len(envelopes)
            apply_bronze_changes(table)
        build_dimension("dim_customer")
    return {name: try_open(name).count() for name in
            ("silver/customers", "silver/orders", "silver/products", "gold/dim_customer")}


def plain_dbt(env: dict[str, str], work: Path) -> dict[str, float]:
    """The peer: the dbt CLI, `source freshness` then `build`, each timed as a user sees it."""
    from include.lakehouse.transform.dbt_project import PROJECT_DIR

    dbt = str(Path(sys.executable).with_name("dbt"))
    times = {}
    for name, args in (("source_freshness", ["source", "freshness"]), ("build", ["build"])):
        started = time.perf_counter()
        result = subprocess.run([dbt, *args, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
                                 "--target-path", str(work / "dbt-target"), "--log-path", str(work / "dbt-logs")],
                                env=env, capture_output=True, text=True)
        times[name] = round(time.perf_counter() - started, 3)
        if result.returncode != 0 and not (name == "source_freshness" and "WARN" in result.stdout):
            raise RuntimeError(f"dbt {' '.join(args)} failed:\n{result.stdout[-2000:]}")
    times["total"] = round(times["source_freshness"] + times["build"], 3)
    return times


def cosmos_dag(env: dict[str, str], timeout: float = 900) -> dict:
    """dbt_transform triggered through the REST API of real Airflow components; the run's timing."""
    from scripts.local_airflow.api import AirflowAPI
    from scripts.local_airflow.components import Components, http_ok, start_airflow, wait_for
    from scripts.local_airflow.settings import init

    init(env)  # migrate + airflow_settings.yaml (the dbt pool), in this child process only
    port = int(env["AIRFLOW__API__PORT"])
    components = Components(env)
    api = AirflowAPI(port)
    try:
        start_airflow(components, port)
        wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/api/v2/monitor/health"), "the Airflow API", 300, components)
        wait_for(lambda: "dbt_transform" in api.dag_ids(), "dbt_transform to be registered", 300, components)
        api.set_paused("dbt_transform", False)
        now = datetime.now(timezone.utc)
        api.trigger("dbt_transform", run_id="bench__dbt", logical_date=now)
        run = wait_for(lambda: next((r for r in api.runs("dbt_transform") if r["dag_run_id"] == "bench__dbt"
                                     and r["state"] in ("success", "failed")), None),
                       "the dbt_transform run", timeout, components)
        tis = api.task_instances("dbt_transform", "bench__dbt")
    finally:
        components.stop()

    def when(value):
        return datetime.fromisoformat(value)

    dbt_tis = [t for t in tis if t["task_id"].startswith("dbt.") and t.get("start_date") and t.get("end_date")]
    producer = next(t for t in tis if t["task_id"] == "dbt.dbt_producer_watcher")
    return {"state": run["state"], "tasks": len(tis),
            "failed_tasks": sorted(t["task_id"] for t in tis if t["state"] in ("failed", "upstream_failed")),
            "dag_run_seconds": round((when(run["end_date"]) - when(run["start_date"])).total_seconds(), 3),
            "dbt_tasks_span_seconds": round((max(when(t["end_date"]) for t in dbt_tis)
                                             - min(when(t["start_date"]) for t in dbt_tis)).total_seconds(), 3),
            "producer_seconds": round(float(producer.get("duration") or 0), 3)}


def _child(work: Path) -> dict:
    """Runs in its own process: Airflow reads its configuration (home, DB) at import."""
    from scripts import localenv

    port = free_port()

    os.environ.update({"LAKEHOUSE_AIRFLOW_HOME": str(work / "airflow"), "DBT_DUCKDB_PATH": str(work / "dbt.duckdb"),
                       "LAKEHOUSE_ALERTS_FILE": str(work / "alerts.jsonl")})
    rows = build_sources(work / "lakehouse")
    env = localenv.airflow_env(home=work / "airflow", port=port)
    env.update({"LAKEHOUSE_ROOT": str(work / "lakehouse"), "DBT_DUCKDB_PATH": str(work / "dbt.duckdb"),
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"})
    from include.lakehouse.transform.dbt_project import dbt_env

    os.environ.update(env)
    # the peer gets its own DuckDB file and extension folder (DuckDB refuses one folder's extension
    # from two origins: this process sees the venv through another path than Airflow's workers)
    os.environ["DBT_DUCKDB_PATH"] = str(work / "plain" / "dbt.duckdb")
    Path(os.environ["DBT_DUCKDB_PATH"]).parent.mkdir(parents=True, exist_ok=True)
    peer = plain_dbt({**os.environ, **dbt_env()}, work)
    os.environ["DBT_DUCKDB_PATH"] = env["DBT_DUCKDB_PATH"]
    project = cosmos_dag(env)
    return {"source_rows": rows, "plain_dbt_seconds": peer, "cosmos": project}


def run() -> dict:
    work = scratch("dbt")
    out = subprocess.run([sys.executable, "-m", "bench.dbt", "--child", str(work)], cwd=ROOT,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"bench/dbt.py child failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    peer, cosmos = result["plain_dbt_seconds"]["total"], result["cosmos"]
    target = f"<= {TARGET_RATIO:g}"
    result["comparisons"] = [
        compare("dbt_transform DAG run (Cosmos WATCHER, real scheduler)", cosmos["dag_run_seconds"], peer,
                peer_name="dbt CLI: source freshness + build", target=target),
        compare("its dbt tasks, first start to last end", cosmos["dbt_tasks_span_seconds"], peer,
                peer_name="dbt CLI: source freshness + build", target=target),
        compare("its producer task (freshness + one dbt build)", cosmos["producer_seconds"], peer,
                peer_name="dbt CLI: source freshness + build", target="-"),
    ]
    return result


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(_child(Path(sys.argv[2]))))
    else:
        print(json.dumps(run(), indent=1))
