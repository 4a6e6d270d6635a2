"""How the demo orders the project's DAGs and files them into families, from the DAG files alone."""

from __future__ import annotations

from scripts.local_airflow.graph import DagInfo, awaited_upstream, dependency_order, family


def test_producers_first_ops_last_and_a_feedback_loop_entered_where_fed():
    dags = {
        "source": DagInfo("source", "time"),
        "features": DagInfo("features", "asset", upstream={"source"}),
        "drift": DagInfo("drift", "asset", upstream={"features", "train"}),
        "train": DagInfo("train", "asset", upstream={"drift"}),
        "maintenance": DagInfo("maintenance", "time", ops=True),
    }
    order = dependency_order(dags)
    assert order == ["source", "features", "drift", "train", "maintenance"]
    awaited = awaited_upstream(dags, order)
    assert awaited["drift"] == {"features"} and awaited["train"] == {"drift"}


def test_a_dag_is_placed_in_its_family_by_its_tag():
    assert family(["ingest", "bronze"]) == "core"
    assert family(["streaming", "week:streaming"]) == "streaming"
    assert family(None) == "core"


def test_the_loop_and_its_ops_run_first_then_each_later_week_then_their_ops():
    """A later week's DAGs (streaming on JVM Spark, ...) do not compete with the lakehouse and ML
    loop for the machine: they start once the loop and its ops DAGs have run, and the later
    weeks' ops DAGs come last."""
    from scripts.local_airflow.graph import not_from_later_phases, phases

    dags = {
        "source": DagInfo("source", "time"),
        "train": DagInfo("train", "asset", upstream={"source"}, family="ml"),
        "stream": DagInfo("stream", "asset", upstream={"source"}, family="streaming"),
        "observe": DagInfo("observe", "asset", upstream={"source"}, ops=True, family="observability"),
        "graphs": DagInfo("graphs", "asset", upstream={"source"}, family="lineage"),
        "maintenance": DagInfo("maintenance", "time", ops=True),
    }
    dags["publish"] = DagInfo("publish", "asset", upstream={"source", "stream"})  # fed by the loop and a week
    dags["restore"] = DagInfo("restore", "none", ops=True)
    order = dependency_order(dags)
    steps = phases(dags, order)
    awaited = not_from_later_phases(awaited_upstream(dags, order), steps)
    assert awaited["publish"] == {"source"} and awaited["stream"] == {"source"}
    assert awaited["observe"] == {"source"}
    assert steps == [
        ("lakehouse and ML loop", ["source", "train", "publish"]),
        ("ops", ["maintenance", "restore"]),
        ("week: lineage", ["graphs"]),
        ("week: streaming", ["stream"]),
        ("ops of later weeks", ["observe"]),
    ]
