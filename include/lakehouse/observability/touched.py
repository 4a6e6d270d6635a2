"""The tables this process read and wrote, noted by the table layer (include/lakehouse/tables/delta.py)
so that lineage covers every task that touches a table without each task declaring it: the
Airflow side (plugins/lakehouse_airflow/lineage.py) reports them as the task's OpenLineage
inputs and outputs. Each Airflow task runs in its own process; `reset()` starts a new scope.
Cheap: the table layer imports it."""

from __future__ import annotations

_touched: dict[str, dict[str, None]] = {"in": {}, "out": {}}


def note(direction: str, uri: str, name: str | None = None) -> None:
    """Note a table by its registry name; a table given by path only (not registered) has no
    stable name to report and is left out."""
    if name:
        _touched[direction][name] = None


def touched() -> tuple[list[str], list[str]]:
    """(tables read, tables written) since the last reset, in first-touch order."""
    return list(_touched["in"]), list(_touched["out"])


def forget(reads: list[str], writes: list[str]) -> None:
    """Drop what a task's lineage reported, so the next task in the same process (`dag.test()`
    runs them all in one) starts from what it touches itself."""
    for direction, names in (("in", reads), ("out", writes)):
        for name in names:
            _touched[direction].pop(name, None)


def reset() -> None:
    for group in _touched.values():
        group.clear()
