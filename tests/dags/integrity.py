"""DAG integrity rules, as a function, so the suite can prove each rule catches a bad DAG.

Rules: every file imports; no connection, Variable or network access at parse time
(enforced by making them raise while the folder is parsed); every DAG has tags, a real
owner, retries >= 2, a doc_md and a deadline; no cycles; task ids are snake_case and say
what they produce (no `task_1`, `python_task`); a task's dict result is one XCom (no
`multiple_outputs`, which a `-> dict` annotation turns on: one Execution API call per key at
the task's end, ~10 per result here, on every chain of the demo - nothing reads the keys alone).
"""

from __future__ import annotations

import re
import socket
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

TASK_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
GENERIC_TASK_ID = re.compile(r"(^|\.)(task|python|bash|op|operator|dummy|empty|step|t)(_?\d+)?(_task)?$|_\d+$")


class ParseTimeAccess(RuntimeError):
    """Raised when a DAG file reaches for a connection, a Variable or the network while parsing."""


def _refuse(what):
    def refuse(*args, **kwargs):
        raise ParseTimeAccess(f"{what} at parse time: move it into a task (args: {args[:2]})")
    return refuse


@contextmanager
def no_parse_time_access():
    targets = {
        "airflow.sdk.bases.hook.BaseHook.get_connection": "connection lookup",
        "airflow.sdk.definitions.connection.Connection.get": "connection lookup",
        "airflow.sdk.definitions.variable.Variable.get": "Variable.get",
        "airflow.models.variable.Variable.get": "Variable.get",
        "airflow.models.connection.Connection.get_connection_from_secrets": "connection lookup",
        "socket.socket.connect": "network access",
        "socket.socket.connect_ex": "network access",
        "socket.create_connection": "network access",
        "socket.getaddrinfo": "network access (DNS)",
    }
    with ExitStack() as stack:
        for target, what in targets.items():
            try:
                stack.enter_context(mock.patch(target, _refuse(what)))
            except (AttributeError, ModuleNotFoundError):
                continue
        yield


def load_dag_folder(folder: Path):
    from airflow.dag_processing.dagbag import DagBag

    with no_parse_time_access():
        return DagBag(str(folder))


def dag_problems(dag) -> list[str]:
    problems = []
    name = dag.dag_id
    if not dag.tags:
        problems.append(f"{name}: no tags")
    if not (dag.doc_md or "").strip():
        problems.append(f"{name}: no doc_md (say what the DAG is for)")
    if not dag.deadline:
        problems.append(f"{name}: no deadline (use lakehouse_airflow.defaults.dag_args)")
    for task in dag.tasks:
        if (task.owner or "airflow") == "airflow":
            problems.append(f"{name}.{task.task_id}: no owner")
        if (task.retries or 0) < 2:
            problems.append(f"{name}.{task.task_id}: retries {task.retries} < 2")
        if not TASK_ID.match(task.task_id) or GENERIC_TASK_ID.search(task.task_id):
            problems.append(f"{name}.{task.task_id}: task id must be snake_case and name what it produces")
        if getattr(task, "multiple_outputs", False):
            problems.append(f"{name}.{task.task_id}: multiple_outputs pushes every key of the result as its own "
                            "XCom (drop the `-> dict` return annotation, or multiple_outputs=False)")
    try:
        from airflow.sdk.definitions._internal.dag_cycle_tester import check_cycle
    except ImportError:  # pragma: no cover - location differs across Airflow 3 minors
        from airflow.utils.dag_cycle_tester import check_cycle
    try:
        check_cycle(dag)
    except Exception as exc:
        problems.append(f"{name}: cycle: {exc}")
    return problems


def folder_problems(folder: Path) -> list[str]:
    bag = load_dag_folder(folder)
    problems = [f"{Path(f).name}: import error: {e.strip().splitlines()[-1]}" for f, e in bag.import_errors.items()]
    for dag in bag.dags.values():
        problems += dag_problems(dag)
    return problems
