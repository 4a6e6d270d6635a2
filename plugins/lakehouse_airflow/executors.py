"""LocalExecutor that imports heavy task libraries once, before it forks its workers.

Airflow's LocalExecutor forks its worker processes from the scheduler, and each worker forks
a process per task; a module imported before the first fork is already in every task. The
task-side stack costs seconds to import here, once per task: dbt 3-5 s, Great Expectations
3.5 s, Evidently 3.7 s, shap 2.2 s, mlflow and scikit-learn 1.3 s each. Preloaded, a GX
validation or a drift check starts at once (`make demo`: every validation, drift check and
ML task on the loop's critical path).
Used by `make demo` / `make ui` (scripts/localenv.py); any deployment can opt in with
`AIRFLOW__CORE__EXECUTOR=lakehouse_airflow.executors.PreloadingLocalExecutor`.
Modules: LAKEHOUSE_PRELOAD_MODULES, comma separated (default `DEFAULT_MODULES`). Only libraries
that are safe to fork after import: they start no thread at import, or only threads they
re-create after a fork (OpenBLAS under numpy/scipy, Arrow's allocator: both register at-fork
handlers; tests/plugins/test_preloading_executor.py forks after preloading and runs each
library in the children). Never preload a library whose import or first use starts a runtime
that a fork breaks: grpc (pyspark's Connect client) or a used delta-rs table (its tokio runtime
refuses to run in a fork) - importing deltalake creates no runtime. The project's own modules
are not preloaded either: a changed file in include/ must reach the next task without a
scheduler restart. A module that fails to import (or a warm-up that fails) is logged and skipped
(the task does it itself, as it would without preloading).
"""

from __future__ import annotations

import importlib
import logging
import os
import warnings

from airflow.executors.local_executor import LocalExecutor

log = logging.getLogger(__name__)
DEFAULT_MODULES = ",".join([
    "dbt.cli.main", "dbt.adapters.duckdb", "cosmos.operators.local",  # dbt_transform
    "pandas", "pyarrow.compute", "pyarrow.dataset", "deltalake", "duckdb", "confluent_kafka",  # tables, ingest
    "great_expectations",  # every validation
    "evidently", "evidently.presets", "evidently.metrics",  # drift_check
    "mlflow", "mlflow.tracking", "mlflow.models", "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store", "skops.io", "git",
    # MLflow scans the installed packages on a process's first log_model/load_model (~1 s): once here
    "mlflow.utils.requirements_utils:_init_packages_to_modules_map", "sklearn.ensemble", "sklearn.pipeline", "sklearn.compose",
    "sklearn.preprocessing", "sklearn.metrics", "sklearn.model_selection", "sklearn.calibration", "scipy.stats",
    "shap",  # training, scoring, evaluation
])


_WARMED: set[str] = set()


def preload(modules: str | None = None) -> list[str]:
    """Import `modules` (default: LAKEHOUSE_PRELOAD_MODULES or DEFAULT_MODULES); returns those
    imported. An entry `module:function` also calls that function (no arguments) once: a library's
    one-time warm-up that only builds data, such as MLflow's map of installed packages."""
    names = modules if modules is not None else os.environ.get("LAKEHOUSE_PRELOAD_MODULES", DEFAULT_MODULES)
    # GX logs a line per API function it registers at import: hundreds, into the scheduler's log
    logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)
    loaded = []
    for name in filter(None, (m.strip() for m in names.split(","))):
        try:
            module, _, function = name.partition(":")
            with warnings.catch_warnings():  # skops' import touches every loaded module: one Airflow
                warnings.simplefilter("ignore")  # deprecation warning each, thousands of log lines
                imported = importlib.import_module(module)
                if function and name not in _WARMED:  # the process preloaded before (a launcher)
                    getattr(imported, function)()
                    _WARMED.add(name)
            loaded.append(name)
        except Exception as exc:  # preloading is an optimisation, never a failure
            log.warning("not preloading %s: %s", name, exc)
    return loaded


class PreloadingLocalExecutor(LocalExecutor):
    """LocalExecutor + `LAKEHOUSE_PRELOAD_MODULES` imported in the parent of all workers."""

    def start(self) -> None:
        preload()
        super().start()

    def end(self) -> None:
        if not hasattr(self, "workers"):  # stopped while preloading (a SIGTERM in the first seconds)
            return
        super().end()
