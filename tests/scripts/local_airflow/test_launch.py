"""The local runner's launcher: `airflow <subcommand>` after a preload, used for the dag-processor
so its forks (a parse, a DAG callback) find pyarrow, delta-rs, Cosmos and the Spark provider
already imported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _run(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    script = tmp_path / "probe.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow"), **env})


def test_launch_runs_the_airflow_cli_after_its_preload(tmp_path):
    done = subprocess.run([sys.executable, "-m", "scripts.local_airflow.launch", "version"], capture_output=True,
                          text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "AIRFLOW_HOME": str(tmp_path), "LAKEHOUSE_PRELOAD_VERSION": "json"})
    import airflow

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == airflow.__version__


def test_every_dag_processor_preload_imports_and_a_fork_writes_delta_after_it(tmp_path):
    """A typo in the list would be skipped silently by preload(): every entry must import. Then a
    fork does what a run-health callback does (an Arrow table appended to a Delta table)."""
    done = _run(f"""
        import os, sys
        sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / "plugins")!r}]
        from scripts.local_airflow.launch import modules_for
        from lakehouse_airflow.executors import preload
        wanted = modules_for("dag-processor").split(",")
        loaded = preload(",".join(wanted))
        assert loaded == wanted, sorted(set(wanted) - set(loaded))
        pid = os.fork()
        if pid == 0:
            import pyarrow as pa
            from deltalake import DeltaTable, write_deltalake
            write_deltalake({str(tmp_path / "t")!r}, pa.table({{"x": [1, 2, 3]}}), mode="append")
            os._exit(0 if DeltaTable({str(tmp_path / "t")!r}).to_pyarrow_table().num_rows == 3 else 1)
        assert os.waitpid(pid, 0)[1] == 0
        print("ok")
    """, tmp_path)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


def test_a_launched_component_starts_only_once_its_ready_file_exists(tmp_path):
    """The runner starts the scheduler and the dag-processor before the metadata DB is migrated:
    their preload runs meanwhile, Airflow's CLI only once the runner has created the ready file."""
    import time

    ready = tmp_path / "db-ready"
    proc = subprocess.Popen([sys.executable, "-m", "scripts.local_airflow.launch", "version"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "AIRFLOW_HOME": str(tmp_path), "LAKEHOUSE_PRELOAD_VERSION": "json",
                                 "LAKEHOUSE_LAUNCH_WHEN": str(ready), "LAKEHOUSE_NICE_VERSION": "7"})
    try:
        time.sleep(8)  # long enough to import Airflow's CLI: it must still be waiting
        assert proc.poll() is None
        stat = Path(f"/proc/{proc.pid}/stat").read_text()
        assert int(stat[stat.rfind(")") + 2:].split()[16]) == 7  # yields the CPU as asked (the dag-processor's 10)
        ready.touch()
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    import airflow

    assert proc.returncode == 0 and out.strip().splitlines()[-1] == airflow.__version__
