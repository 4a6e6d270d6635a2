"""Cosmos' WATCHER mode as dbt_transform uses it: one producer task runs `dbt source freshness`
and one `dbt build`; every source, model and model's tests is a sensor task that reads its node's
result from the producer's XComs (deferred to the triggerer while the build runs).

Owns the one correction the DAG needs on top of Cosmos 1.15.1: a test across models (a
`relationships` test, a singular test reading two models) is its own task
(`should_detach_multiple_parents_tests`), but Cosmos aggregates its result into every parent
model's tests and never under its own key. Its task would then always succeed (no result of its
own), and a parent's test task would fail when the cross-model test failed or was skipped because
of another branch. `own_results_for_detached_tests` gives each detached test its own result key
and takes it out of its parents' aggregates, so each task fails exactly when its own tests fail.
Cheap at parse time: touches the rendered task objects only.
"""

from __future__ import annotations

from typing import Any


def own_results_for_detached_tests(task_group: Any) -> list[str]:
    """Re-key the producer's test aggregation of `task_group` (a Cosmos WATCHER DbtTaskGroup):
    each detached test sensor's test aggregates under its own unique_id. Returns their ids."""
    from cosmos.operators.watcher import DbtProducerWatcherOperator, DbtTestWatcherOperator

    tasks = list(task_group.children.values())
    producers = [t for t in tasks if isinstance(t, DbtProducerWatcherOperator)]
    if not producers:
        return []
    tests_per_model: dict[str, list[str]] = producers[0].tests_per_model
    detached = [t.model_unique_id for t in tasks
                if isinstance(t, DbtTestWatcherOperator) and str(t.model_unique_id).startswith("test.")]
    for test_id in detached:
        for model_id in list(tests_per_model):
            tests_per_model[model_id] = [tid for tid in tests_per_model[model_id] if tid != test_id]
        tests_per_model[test_id] = [test_id]
    return detached


def skip_after_freshness_errors(context: Any, dag: Any, task_group: Any, nodes: dict | None,
                                sources_json: dict | None) -> list[tuple[str, str]]:
    """The producer's source-freshness callback: the models, seeds and snapshots downstream of a
    source past its `error_after` are left out of the build (their tasks skip; the source's own
    task fails). A source past `warn_after` only warns: the project's rule ("warns when silver has
    seen no change for a day"), where Cosmos' default would skip everything after a warning too.
    Unlike Cosmos' default, a model with one stale and one fresh parent is left out as well: it
    would read a table the build did not refresh."""
    from cosmos.operators._watcher.state import DbtNodeStatus

    if not nodes or not sources_json:
        return []
    stale = {r["unique_id"] for r in sources_json.get("results", []) if r.get("status") == "error"}
    skipped, changed = set(stale), bool(stale)
    while changed:
        changed = False
        for node_id, node in nodes.items():
            if node_id not in skipped and skipped & set(node.depends_on):
                skipped.add(node_id)
                changed = True
    runnable = {"model", "seed", "snapshot"}
    return [(node_id, DbtNodeStatus.SKIPPED) for node_id in sorted(skipped - stale)
            if getattr(nodes[node_id].resource_type, "value", nodes[node_id].resource_type) in runnable]
