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


class RegisteredAPI:
    """The REST API's view of a DAG folder once (or before) the dag-processor registered it."""

    def __init__(self, registered: set[str], errors: list[dict] | None = None):
        self.registered, self.errors = registered, errors or []
        dags = {
            "source": {"timetable_summary": "@daily", "asset_expression": None, "tags": [{"name": "ingest"}],
                       "params": {}},
            "train": {"timetable_summary": "Asset", "asset_expression": {"any": [{"asset": {"name": "features"}}]},
                      "tags": [{"name": "week:ml"}], "params": {}},
            "restore": {"timetable_summary": None, "asset_expression": None, "tags": [{"name": "ops"}],
                        "params": {"dry_run": {"value": True, "schema": {"type": "boolean"}, "description": "x"}}},
            "canary": {"timetable_summary": None, "asset_expression": None, "tags": [{"name": "canary"}], "params": {}},
        }
        self.dags = {d: {"dag_id": d, "relative_fileloc": f"{d}.py", "is_stale": False, **v} for d, v in dags.items()}

    def get_all(self, path, key, **query):
        if path == "/importErrors":
            return self.errors
        if path == "/dags":
            return [d for d in self.dags.values() if d["dag_id"] in self.registered]
        assert path == "/assets"
        return [{"name": "features", "scheduled_dags": [{"dag_id": "train"}], "producing_tasks": [{"dag_id": "source"}]},
                {"name": "model", "scheduled_dags": [], "producing_tasks": [{"dag_id": "train"}]}]

    def get(self, path):
        return self.dags[path.split("/")[2]]


def _folder(tmp_path):
    for name in ("source", "train", "restore", "canary"):
        (tmp_path / f"{name}.py").write_text("from airflow.sdk import dag\n")
    (tmp_path / "helpers.py").write_text("def helper():\n    return 1\n")  # no DAG: not waited for
    return tmp_path


def test_the_demo_s_graph_is_what_the_dag_processor_registered(tmp_path):
    """The runner parsed the DAG folder itself (3-4 CPU-s on 2 cores while Airflow's components
    started); it now reads the registered DAGs, their schedules, params and assets."""
    from scripts.local_airflow.graph import registered_dags

    dags = registered_dags(RegisteredAPI({"source", "train", "restore", "canary"}), _folder(tmp_path))
    assert set(dags) == {"source", "train", "restore"}  # the canary fails on purpose: `make canary`
    assert (dags["source"].kind, dags["train"].kind, dags["restore"].kind) == ("time", "asset", "none")
    assert dags["train"].consumes == {"features"} and dags["train"].upstream == {"source"}
    assert dags["source"].produces == {"features"} and dags["train"].produces == {"model"}
    assert dags["restore"].ops and dags["restore"].demo_conf == {"dry_run": True}
    assert dags["train"].family == "ml" and dags["source"].family == "core"


def test_the_graph_waits_for_every_dag_file_and_reports_import_errors(tmp_path):
    import pytest

    from scripts.local_airflow.graph import registered_dags
    from scripts.local_airflow.settings import DemoError

    assert registered_dags(RegisteredAPI({"source", "train", "canary"}), _folder(tmp_path)) is None
    with pytest.raises(DemoError, match="1 DAG file.*train.py"):
        registered_dags(RegisteredAPI({"source"}, errors=[{"filename": "train.py", "stack_trace": "SyntaxError"}]),
                        _folder(tmp_path))
