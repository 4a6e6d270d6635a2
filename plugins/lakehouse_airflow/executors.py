"""LocalExecutor that imports heavy task libraries once, before it forks its workers.

Airflow's LocalExecutor forks its worker processes from the scheduler, and each worker forks
a process per task; a module imported before the first fork is already in every task. dbt
alone takes 3-5 s to import here, once per dbt task; preloaded, it costs nothing per task.
Used by `make demo` / `make ui` (scripts/localenv.py); any deployment can opt in with
`AIRFLOW__CORE__EXECUTOR=lakehouse_airflow.executors.PreloadingLocalExecutor`.
Modules: LAKEHOUSE_PRELOAD_MODULES, comma separated; only modules that start no threads at import
(numpy, pyarrow, deltalake do: forking after them risks deadlocks) (a module that fails to import is logged
and skipped: the task imports it itself, as it would without preloading).
"""

from __future__ import annotations

import importlib
import logging
import os

from airflow.executors.local_executor import LocalExecutor

log = logging.getLogger(__name__)
DEFAULT_MODULES = "dbt.cli.main,dbt.adapters.duckdb,cosmos.operators.local"  # pure Python: no threads before fork


class PreloadingLocalExecutor(LocalExecutor):
    """LocalExecutor + `LAKEHOUSE_PRELOAD_MODULES` imported in the parent of all workers."""

    def start(self) -> None:
        for name in filter(None, (m.strip() for m in os.environ.get("LAKEHOUSE_PRELOAD_MODULES",
                                                                    DEFAULT_MODULES).split(","))):
            try:
                importlib.import_module(name)
            except Exception as exc:  # preloading is an optimisation, never a failure
                log.warning("not preloading %s: %s", name, exc)
        super().start()
