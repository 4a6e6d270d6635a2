"""The contract of a Spark job file in include/spark_jobs/.

A job file defines `main(spark, args) -> dict` and ends with
`if __name__ == "__main__": run_job(main)`. The same file then runs under spark-submit
(local[*], a standalone cluster, YARN/K8s), on Databricks as a spark_python_task, or
in-process against a warm Spark Connect server. The returned dict is the task's result:
written to LAKEHOUSE_JOB_RESULT_FILE when set, and printed on one line. Module-level `READS`
and `WRITES` list the registered tables the job reads and writes: its lineage (job_tables).
Never starts a session itself: the runner (spark-submit, Connect, Databricks) owns it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

JOBS_DIR = Path(__file__).resolve().parents[2] / "spark_jobs"
RESULT_PREFIX = "LAKEHOUSE_JOB_RESULT "


def job_path(job: str) -> Path:
    path = JOBS_DIR / (job if job.endswith(".py") else f"{job}.py")
    if not path.is_file():
        known = sorted(p.stem for p in JOBS_DIR.glob("*.py") if not p.name.startswith("_"))
        raise FileNotFoundError(f"Spark job '{job}' not found in {JOBS_DIR}; known jobs: {known}")
    return path


def load_job(job: str) -> ModuleType:
    path = job_path(job)
    spec = importlib.util.spec_from_file_location(f"lakehouse_spark_job_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "main", None)):
        raise AttributeError(f"Spark job {path} has no main(spark, args) function")
    return module


def job_tables(job: str) -> tuple[list[str], list[str]]:
    """(READS, WRITES) of a job file: the registered tables its contract says it reads and writes."""
    module = load_job(job)
    return list(getattr(module, "READS", [])), list(getattr(module, "WRITES", []))


def write_result(result: dict[str, Any]) -> None:
    target = os.environ.get("LAKEHOUSE_JOB_RESULT_FILE")
    if target:
        Path(target).write_text(json.dumps(result, default=str))
    print(RESULT_PREFIX + json.dumps(result, default=str), flush=True)


def run_job(main: Callable[[Any, list[str]], dict[str, Any]]) -> None:
    """Entry point of a job file run by spark-submit / Databricks."""
    from include.lakehouse.spark.session import get_spark

    spark = get_spark(app_name=Path(sys.argv[0]).stem)
    try:
        write_result(main(spark, sys.argv[1:]) or {})
    finally:
        if "DATABRICKS_RUNTIME_VERSION" not in os.environ:  # Databricks owns its cluster's session
            spark.stop()
