"""`python -m scripts.local_airflow.launch <airflow subcommand> [args]`: the Airflow CLI, in a
process that first imports the libraries its forks would otherwise each import again.

The dag-processor forks a process for every parse of a DAG file and for every DAG-level callback
(the run-health record of each finished run): each fork paid pyarrow, pandas and delta-rs for
the callback's Delta append, Cosmos for dbt_transform and the Spark provider's SparkSubmitOperator
(which imports the OpenLineage listener) for the Spark DAGs - about 0.5-1 s of CPU a fork, some
thirty forks in `make demo`, beside the tasks on a 2-core machine. Imported once here, a fork has
them for free. Only fork-safe third-party libraries (tests/plugins/test_preloading_executor.py);
never the project's modules, so a changed DAG file or include/ module is still read anew.
The local runner's choice (scripts/local_airflow/components.py); the Astro image runs the plain
`airflow dag-processor`. Modules: LAKEHOUSE_PRELOAD_<SUBCOMMAND> (e.g. LAKEHOUSE_PRELOAD_DAG_PROCESSOR),
comma separated, else PRELOAD's entry."""

from __future__ import annotations

import os
import sys
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


def modules_for(subcommand: str) -> str:
    return os.environ.get("LAKEHOUSE_PRELOAD_" + subcommand.upper().replace("-", "_"), PRELOAD.get(subcommand, ""))


def main(argv: list[str]) -> int | None:
    if not argv:
        raise SystemExit("usage: python -m scripts.local_airflow.launch <airflow subcommand> [args]")
    sys.path.insert(0, str(ROOT / "plugins"))
    from lakehouse_airflow.executors import preload

    preload(modules_for(argv[0]))
    from airflow.__main__ import main as airflow_main

    sys.argv = ["airflow", *argv]
    return airflow_main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
