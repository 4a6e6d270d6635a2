"""The house plan as an architecture test (issue #15): a pure text/AST scan of the code, fast.

1. One write path: only the table layer (include/lakehouse/tables/) writes Delta tables:
   `write_deltalake`, `DeltaTable.create`, `.merge(`, `.delete(`, `.update(` and table property
   changes (`.alter`); the maintenance operations (optimize, vacuum, checkpoint, restore) live
   in include/lakehouse/maintenance/operations.py only. Scanned: include/, plugins/, dags/,
   scripts/. Not scanned, by decision: tests/ and bench/, which build fixtures and measure raw
   delta-rs as the peer a benchmark compares against. `.delete(`/`.merge(` calls that are not
   Delta are listed in NOT_DELTA with what they are.
   Spark jobs' own output tables may be written by a Delta-capable engine through
   include/lakehouse/spark/bridge.py (`write_delta`: Spark's writer, not delta-rs; the table is
   still created by tables.delta), which this scan does not see.
2. One place for paths: `lakehouse_root` is used only by include/lakehouse/config.py (which
   defines it) and include/lakehouse/tables/registry.py (table URIs, the landing zone and the
   other folders under the root); ROOT_USERS lists the exceptions and why.
4. The engine (include/) imports Airflow only where AIRFLOW_IN_ENGINE says (lazily, to read a
   connection at run time).
3. One list of topics and tables: no literal list/tuple/set/dict in include/, plugins/ or dags/
   holds two or more configured topic or registered table names (sources.yaml and tables.yaml
   are that list; derive from them). TABLE_LISTS lists the exceptions and why.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("include", "plugins", "dags", "scripts")
TABLE_LAYER = "include/lakehouse/tables/"
MAINTENANCE = "include/lakehouse/maintenance/operations.py"

WRITES = {"merge", "delete", "update", "create", "alter"}  # attribute calls / accesses
MAINTENANCE_OPS = {"optimize", "vacuum", "restore", "create_checkpoint", "cleanup_metadata"}
NOT_DELTA = {  # (file, receiver as written): what it is instead
    ("plugins/lakehouse_airflow/alerts.py", "Variable.delete"): "an Airflow Variable",
    ("scripts/local_airflow/settings.py", "session.query(Connection).filter(Connection.conn_id == c['conn_id']).delete"):
        "rows of Airflow's metadata DB (SQLAlchemy)",
    ("include/lakehouse/formats/benchmark.py", "tx.delete"): "an Iceberg transaction (pyiceberg)",
    ("include/lakehouse/formats/benchmark.py", "ice.delete"): "an Iceberg table (pyiceberg)",
}
ROOT_USERS = {
    "include/lakehouse/config.py": "defines it",
    "include/lakehouse/tables/registry.py": "builds every path under it",
    "include/lakehouse/transform/dbt_project.py": "hands LAKEHOUSE_ROOT to dbt (its profile and _sources.yml "
                                                 "read it as an env var) and names it in an error",
}
AIRFLOW_IN_ENGINE = {
    ("include/lakehouse/config.py", "storage_options"): "credentials from LAKEHOUSE_STORAGE_CONN_ID",
    ("include/lakehouse/spark/session.py", "connection_target"): "the Spark target of spark_default",
}
TABLE_LISTS = {
    ("include/lakehouse/ml/features.py", "SOURCES"): "the feature job's inputs by role: the one list of them",
}


def python_files():
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "__pycache__" not in path.parts:
                yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), filename=str(path))


def dotted(node: ast.AST) -> str:
    return ast.unparse(node).replace('"', "'")


def test_only_the_table_layer_writes_delta_tables():
    found = []
    for rel, tree in python_files():
        in_layer = rel.startswith(TABLE_LAYER)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "deltalake" and not in_layer:
                found += [f"{rel}:{node.lineno} imports write_deltalake" for a in node.names
                          if a.name in ("write_deltalake", "convert_to_deltalake")]
            if not isinstance(node, ast.Attribute):
                continue
            receiver = dotted(node.value)
            if node.attr in WRITES and not in_layer:
                if (rel, f"{receiver}.{node.attr}") in NOT_DELTA:
                    continue
                if node.attr in ("update", "create") and receiver not in ("DeltaTable",) and "Delta" not in receiver:
                    continue  # dict.update, Model.create...: only Delta receivers named as such are writes
                found.append(f"{rel}:{node.lineno} {receiver}.{node.attr}")
            if node.attr in MAINTENANCE_OPS and not in_layer and rel != MAINTENANCE:
                if receiver in ("m", "maintenance", "operations") or receiver.endswith(".operations"):
                    continue  # calls of maintenance/operations.py's own functions
                found.append(f"{rel}:{node.lineno} {receiver}.{node.attr}")
    assert not found, "Delta writes outside include/lakehouse/tables/ (use tables.delta):\n" + "\n".join(found)


def test_paths_under_the_lakehouse_root_come_from_the_registry():
    found = []
    for rel, tree in python_files():
        if rel in ROOT_USERS:
            continue
        for node in ast.walk(tree):
            name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
            if name == "lakehouse_root" or (isinstance(node, ast.alias) and node.name == "lakehouse_root"):
                found.append(f"{rel}:{getattr(node, 'lineno', '?')}")
    assert not found, ("lakehouse_root() used outside config.py and the registry (use tables.registry: "
                       "table_uri, folder, landing_dir):\n" + "\n".join(sorted(set(found))))


def configured_names() -> set[str]:
    from include.lakehouse.config import load_sources
    from include.lakehouse.tables.registry import load_registry

    return {n for n in load_registry() if "*" not in n} | set(load_sources()["topics"])


def test_no_topic_or_table_list_is_written_twice():
    names = configured_names()
    found = []
    for rel, tree in python_files():
        if rel.startswith("scripts/"):
            continue
        assigned = {id(node.value): [dotted(t) for t in node.targets] for node in ast.walk(tree)
                    if isinstance(node, ast.Assign)}
        for node in ast.walk(tree):
            if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
                items = node.elts
            elif isinstance(node, ast.Dict):
                items = [*node.keys, *node.values]
            else:
                continue
            listed = [i.value for i in items if isinstance(i, ast.Constant) and i.value in names]
            if len(listed) < 2:
                continue
            if any((rel, target) in TABLE_LISTS for target in assigned.get(id(node), [])):
                continue
            found.append(f"{rel}:{node.lineno} {sorted(listed)}")
    assert not found, ("topic/table names listed in code (declare them once in sources.yaml / tables.yaml "
                       "and derive):\n" + "\n".join(found))


def test_the_engine_imports_airflow_only_to_read_a_connection():
    found = []
    for rel, tree in python_files():
        if not rel.startswith("include/"):
            continue
        for func in [tree, *[n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]]:
            for node in ast.walk(func) if func is not tree else ast.iter_child_nodes(tree):
                modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                           else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                if any(m == "airflow" or m.startswith("airflow.") for m in modules):
                    where = getattr(func, "name", "<module>")
                    if (rel, where) not in AIRFLOW_IN_ENGINE:
                        found.append(f"{rel}:{node.lineno} in {where}")
    assert not found, "Airflow imported by the engine:\n" + "\n".join(sorted(set(found)))


def test_the_scan_sees_what_it_forbids(tmp_path, monkeypatch):
    """The three scans flag a planted violation of each rule (so they cannot pass vacuously)."""
    planted = tmp_path / "include" / "lakehouse" / "stage"
    planted.mkdir(parents=True)
    (planted / "bad.py").write_text(
        "from deltalake import write_deltalake\n"
        "from include.lakehouse.config import lakehouse_root\n"
        "import airflow.sdk\n"
        "TOPICS = ['shop.public.customers', 'shop.public.orders']\n"
        "def f(dt):\n    dt.merge(None, 'x').execute()\n    return f'{lakehouse_root()}/silver/x'\n")
    for top in SCANNED[1:]:
        (tmp_path / top).mkdir(exist_ok=True)
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    checks = (test_only_the_table_layer_writes_delta_tables, test_paths_under_the_lakehouse_root_come_from_the_registry,
              test_no_topic_or_table_list_is_written_twice, test_the_engine_imports_airflow_only_to_read_a_connection)
    for check in checks:
        try:
            check()
        except AssertionError as exc:
            assert "include/lakehouse/stage/bad.py" in str(exc), exc
        else:
            raise AssertionError(f"{check.__name__} passed on a planted violation")
