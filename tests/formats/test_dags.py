"""The two DAG files: publish_formats runs on every registered gold table's Asset and maps over
them; format_benchmark runs on demand, after the pipeline in the demo (tag ops)."""

from __future__ import annotations

from pathlib import Path

from airflow.dag_processing.dagbag import DagBag

from include.lakehouse.tables.registry import load_registry

DAGS = Path(__file__).resolve().parents[2] / "dags"


def asset_names(condition) -> set[str]:
    names: set[str] = set()
    stack = [condition]
    while stack:
        item = stack.pop()
        if hasattr(item, "objects"):
            stack.extend(item.objects)
        elif getattr(item, "name", None):
            names.add(item.name)
    return names


def test_publish_formats_on_gold_assets_and_benchmark_on_demand():
    bag = DagBag(str(DAGS))
    publish, bench = bag.dags["publish_formats"], bag.dags["format_benchmark"]
    gold = {n for n, s in load_registry().items() if s.layer == "gold"}
    assert asset_names(publish.timetable.asset_condition) == gold
    assert "ops" in bench.tags and bench.timetable.__class__.__name__ == "NullTimetable"
    assert bench.params.dump()["rows"] is None  # LAKEHOUSE_FORMAT_BENCH_ROWS or 1M


def test_publish_formats_publishes_the_gold_tables_whose_updates_started_the_run():
    """One gold table updated -> one publish task, not one per gold table (the demo's dbt, SCD2
    and streaming runs update gold tables one after another: each run had published all of them)."""
    from airflow.sdk import Asset

    bag = DagBag(str(DAGS))
    choose = bag.dags["publish_formats"].get_task("tables_to_publish").python_callable
    gold = sorted(n for n, s in load_registry().items() if s.layer == "gold")
    updated = {Asset(name=gold[0], uri=f"lakehouse://{gold[0]}"): [object()],
               Asset(name="silver/orders", uri="lakehouse://silver/orders"): [object()]}
    assert choose(triggering_asset_events=updated) == [gold[0]]
    assert choose(triggering_asset_events={}) == gold  # a manual run: every gold table
    assert choose() == gold
