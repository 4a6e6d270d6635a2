"""`python -m scripts.local_airflow.launch <airflow subcommand> [args]`: the Airflow CLI, in a
process that first imports the libraries its forks would otherwise each import again.

The dag-processor forks a process for every parse of a DAG file and for every DAG-level callback
(the run-health record of each finished run): each fork paid pyarrow, pandas and delta-rs for
the callback's Delta append, Cosmos for dbt_transform and the Spark provider's SparkSubmitOperator
(which imports the OpenLineage listener) for the Spark DAGs - about 0.5-1 s of CPU a fork, some
thirty forks in `make demo`, beside the tasks on a 2-core machine. Imported once here, a fork has
them for free. Only fork-safe third-party libraries (tests/plugins/test_preloading_executor.py);
never the project's modules, so a changed DAG file or include/ module is still read anew.
The scheduler's PreloadingLocalExecutor imports the task stack (lakehouse_airflow/executors.py)
before its first loop: ~10 s on one core. Launched here, the same preload runs while the metadata
DB is still migrating (LAKEHOUSE_LAUNCH_WHEN: the file whose existence says the DB is ready; the
CLI starts only then), so the scheduler's first loop is not 10 s behind the other components.

The local runner's choice (scripts/local_airflow/components.py); the Astro image runs the plain
`airflow scheduler` / `airflow dag-processor` (the executor still preloads, at its start). Modules:
LAKEHOUSE_PRELOAD_<SUBCOMMAND> (e.g. LAKEHOUSE_PRELOAD_DAG_PROCESSOR), comma separated, else
PRELOAD's entry (the scheduler: the executor's own list)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRELOAD = {
    "dag-processor": ",".join([
        "pandas", "pyarrow", "pyarrow.compute", "deltalake",  # run-health callbacks: one Delta append each
        "cosmos", "cosmos.operators.watcher", "cosmos.plugin.airflow3",  # dbt_transform's parse
        "airflow.providers.databricks.hooks.databricks",  # dbt_transform's parse (its databricks target)
        "airflow.providers.apache.spark.operators.spark_submit",  # the Spark DAGs' parse
    ]),
}


# The dag-processor yields the CPU (nice): on 2 cores its start-up (preload, parse) and its DAG
# callbacks during the run competed with the scheduler's preload and with the tasks, while nothing
# waits for them (the DAGs are registered long before the scheduler is ready).
NICENESS = {"dag-processor": 10}
WAIT_TIMEOUT = 600  # seconds for LAKEHOUSE_LAUNCH_WHEN to appear


def modules_for(subcommand: str) -> str | None:
    """The modules `subcommand` preloads; None for the scheduler: its executor's own list."""
    default = None if subcommand == "scheduler" else PRELOAD.get(subcommand, "")
    return os.environ.get("LAKEHOUSE_PRELOAD_" + subcommand.upper().replace("-", "_"), default)


def wait_for(path: str | None, timeout: float = WAIT_TIMEOUT) -> None:
    """Until `path` exists (None: at once); exits with a message after `timeout` seconds."""
    end = time.monotonic() + timeout
    while path and not os.path.exists(path):
        if time.monotonic() > end:
            raise SystemExit(f"launch: {path} did not appear within {timeout:.0f} s (the metadata DB migration?)")
        time.sleep(0.1)


def main(argv: list[str]) -> int | None:
    if not argv:
        raise SystemExit("usage: python -m scripts.local_airflow.launch <airflow subcommand> [args]")
    sys.path.insert(0, str(ROOT / "plugins"))
    os.nice(int(os.environ.get("LAKEHOUSE_NICE_" + argv[0].upper().replace("-", "_"), NICENESS.get(argv[0], 0))))
    from lakehouse_airflow.executors import preload

    preload(modules_for(argv[0]))
    from airflow.__main__ import main as airflow_main  # the CLI's imports, before the wait as well

    wait_for(os.environ.get("LAKEHOUSE_LAUNCH_WHEN"))

    sys.argv = ["airflow", *argv]
    return airflow_main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
