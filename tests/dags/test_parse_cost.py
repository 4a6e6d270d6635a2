"""DAG files stay cheap to parse. The dag-processor imports every DAG file in a fresh fork at
start-up, again every refresh, and again for every DAG-level callback (each finished run of a
DAG with run-health callbacks): a library imported by a DAG file is paid each time. Task-side
libraries belong inside the tasks, and the project's operator modules (imported by the DAG files)
must not pull in the OpenLineage provider (~0.5 s) unless an ecosystem base class does
(SparkSubmitOperator imports it itself)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TASK_SIDE = ["pandas", "pyarrow", "deltalake", "duckdb", "great_expectations", "mlflow", "sklearn", "evidently",
             "shap", "pyspark", "dbt", "include.lakehouse.tables.delta", "include.lakehouse.quality"]
LINEAGE = "airflow.providers.openlineage.extractors"
# what a DAG file may import because the ecosystem's own piece it uses does
ALLOWED = {"dbt_transform.py": {"dbt", LINEAGE}}  # Cosmos renders the dbt project
SPARK_SUBMIT_USERS = {"spark_smoke.py", "feature_build.py", "stream_order_events.py", "stream_customer_order_stats.py"}

PROBE = r"""
import json, os, sys, importlib.util
sys.path[:0] = [sys.argv[1] + "/plugins", sys.argv[1] + "/dags", sys.argv[1]]
import airflow.sdk, airflow.models  # what the dag-processor has before it forks a parse
watched = json.loads(sys.argv[2])
out = {}
for target in sys.argv[3:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # like the dag-processor: each file parsed in a fresh fork
        os.close(read)
        before = set(sys.modules)
        if target.endswith(".py"):
            spec = importlib.util.spec_from_file_location("probe_dag", target)
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
        else:
            importlib.import_module(target)
        new = set(sys.modules) - before
        hits = sorted(w for w in watched if any(m == w or m.startswith(w + ".") for m in new))
        os.write(write, json.dumps(hits).encode())
        os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 65536):
        data += chunk
    os.waitpid(pid, 0)
    out[os.path.basename(target) if target.endswith(".py") else target] = json.loads(data or b"null")
print(json.dumps(out))
"""


def _probe(targets: list[str]) -> dict[str, list[str] | None]:
    done = subprocess.run([sys.executable, "-c", PROBE, str(ROOT), json.dumps(TASK_SIDE + [LINEAGE]), *targets],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_dag_files_import_no_task_side_library_at_parse():
    files = sorted(str(p) for p in (ROOT / "dags").glob("*.py"))
    found = _probe(files)
    assert len(found) == len(files) and None not in found.values(), found
    problems = {}
    for name, hits in found.items():
        allowed = ALLOWED.get(name, set()) | ({LINEAGE} if name in SPARK_SUBMIT_USERS else set())
        if set(hits) - allowed:
            problems[name] = sorted(set(hits) - allowed)
    assert not problems, f"DAG files importing task-side libraries at parse (move the import into the task): {problems}"


def test_operator_modules_do_not_import_the_openlineage_provider():
    modules = ["lakehouse_airflow.lineage", "lakehouse_airflow.operators.data_quality",
               "lakehouse_airflow.operators.drift", "lakehouse_airflow.operators.delta_maintenance",
               "lakehouse_airflow.operators.observe"]
    found = _probe(modules)
    assert {m: hits for m, hits in found.items() if hits} == {}
