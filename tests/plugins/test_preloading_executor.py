"""The PreloadingLocalExecutor imports the task-side libraries in the scheduler, before the
LocalExecutor forks its workers (which fork the tasks): every library preloaded must still work
in a process forked after the import - and in one forked from that fork, as a task is."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from scripts import localenv

# In the grandchildren (worker -> task): each library does real work, with its own threads.
CHILD_WORK = textwrap.dedent("""
    import os, sys, tempfile
    import numpy as np, pyarrow as pa, pyarrow.compute as pc, pandas as pd
    from deltalake import DeltaTable, write_deltalake
    from sklearn.ensemble import HistGradientBoostingClassifier
    import duckdb

    def work(n):
        a = np.random.default_rng(n).random((400, 400))
        assert (a @ a).shape == (400, 400)                      # OpenBLAS threads
        big = pa.array(np.arange(2_000_000))
        assert pc.sum(big).as_py() == 1999999000000             # Arrow's thread pool
        path = tempfile.mkdtemp()
        write_deltalake(path, pa.table({"x": [1, 2, n]}))       # delta-rs: its tokio runtime
        assert DeltaTable(path).to_pyarrow_table().num_rows == 3
        X = np.random.default_rng(n).random((300, 4)); y = (X[:, 0] > 0.5).astype(int)
        assert HistGradientBoostingClassifier(max_iter=5).fit(X, y).score(X, y) > 0.5  # OpenMP
        assert duckdb.sql("select 42").fetchone()[0] == 42
        assert len(pd.DataFrame({"a": range(10)}).groupby("a").size()) == 10
        if n == 0:                                               # MLflow: a SQLite store made in the task
            import mlflow
            mlflow.set_tracking_uri(f"sqlite:///{path}/mlflow.db")
            assert mlflow.get_experiment(mlflow.create_experiment("e")).name == "e"
""")


def test_preloaded_libraries_work_in_forked_tasks(tmp_path):
    script = tmp_path / "fork_after_preload.py"
    script.write_text(textwrap.dedent("""
        import os, sys
        from lakehouse_airflow.executors import DEFAULT_MODULES, preload

        loaded = preload()
        expected = [m for m in DEFAULT_MODULES.split(",")]
        assert loaded == expected, sorted(set(expected) - set(loaded))
    """) + CHILD_WORK + textwrap.dedent("""
        workers = []
        for w in range(2):                      # the LocalExecutor's workers ...
            pid = os.fork()
            if pid == 0:
                tasks = []
                for t in range(3):              # ... each forking tasks, as supervise() does
                    tpid = os.fork()
                    if tpid == 0:
                        try:
                            work(w * 10 + t)
                        except BaseException as exc:
                            print("task failed:", repr(exc), flush=True)
                            os._exit(1)
                        os._exit(0)
                    tasks.append(tpid)
                codes = [os.waitpid(p, 0)[1] for p in tasks]
                os._exit(0 if not any(codes) else 1)
            workers.append(pid)
        codes = [os.waitpid(p, 0)[1] for p in workers]
        print("workers", codes, flush=True)
        sys.exit(0 if not any(codes) else 1)
    """))
    env = {**os.environ, **localenv.airflow_env(tmp_path / "airflow")}
    env.pop("LAKEHOUSE_PRELOAD_MODULES", None)
    # a deadlock after fork would hang: the timeout turns it into a failure
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "workers [0, 0]" in done.stdout


def test_a_module_that_fails_to_import_is_skipped():
    from lakehouse_airflow.executors import preload

    assert preload("json, no_such_module_here ,csv") == ["json", "csv"]
    assert preload("json:no_such_function,importlib:invalidate_caches") == ["importlib:invalidate_caches"]


def test_an_executor_stopped_while_preloading_ends_quietly():
    """The scheduler ends its executor on SIGTERM; during the preload (seconds, at start-up) the
    LocalExecutor had no workers yet and `end` raised AttributeError into the scheduler's log."""
    from lakehouse_airflow.executors import PreloadingLocalExecutor

    PreloadingLocalExecutor(parallelism=2).end()
