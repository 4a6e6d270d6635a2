"""Lineage without a running Airflow: the tables a task touched through the table layer become
its OpenLineage datasets (stable names, schema, row counts), and the events fold into the
table-level graph of ops/lineage_edges (with dbt-style column lineage)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pyarrow as pa
from openlineage.client.serde import Serde

from include.lakehouse.maintenance.operations import read_table
from include.lakehouse.observability import lineage, touched
from include.lakehouse.observability.health import read_ops
from include.lakehouse.tables.delta import append, merge_upsert
from lakehouse_airflow.assets import table_asset
from lakehouse_airflow.lineage import task_lineage


def _event(job: str, facts) -> dict:
    return {"eventType": "COMPLETE", "eventTime": "2026-01-01T00:00:00Z", "run": {"runId": "r1"},
            "job": {"namespace": "lakehouse", "name": job},
            "inputs": [json.loads(Serde.to_json(d)) for d in facts.inputs],
            "outputs": [json.loads(Serde.to_json(d)) for d in facts.outputs]}


def test_a_task_reports_the_tables_it_touched_and_the_graph_chains_them(lakehouse_root, tmp_path):
    touched.reset()
    append("bronze/smoke_orders", pa.table({"order_id": [1, 2, 3], "order_date": ["2026-01-01"] * 3,
                                            "amount": [1.0, 2.0, 3.0]}))
    first = task_lineage(SimpleNamespace(inlets=[], outlets=[table_asset("bronze/smoke_orders")]))
    assert [d.name for d in first.inputs] == [] and [d.name for d in first.outputs] == ["bronze/smoke_orders"]
    out = first.outputs[0]
    assert out.namespace == "lakehouse" and out.outputFacets["outputStatistics"].rowCount == 3
    assert [f.name for f in out.facets["schema"].fields] == ["order_id", "order_date", "amount"]

    assert touched.touched() == ([], [])  # reported: the next task starts clean
    rows = read_table("bronze/smoke_orders")
    merge_upsert("gold/smoke_daily_revenue", pa.table({"order_date": ["2026-01-01"],
                                                       "revenue": [sum(rows["amount"].to_pylist())]}))
    second = task_lineage(SimpleNamespace(inlets=[], outlets=[]))
    assert [d.name for d in second.inputs] == ["bronze/smoke_orders"]
    assert [d.name for d in second.outputs] == ["gold/smoke_daily_revenue"]

    log = tmp_path / "events.jsonl"
    duckdb = "duckdb:///machine/specific/lakehouse.duckdb"  # as Cosmos names dbt's relations
    dbt = {"eventType": "COMPLETE", "eventTime": "2026-01-01T00:01:00Z", "run": {"runId": "r2"},
           "job": {"namespace": "lakehouse", "name": "dbt_transform.dbt.stg_revenue.run"},
           "inputs": [{"namespace": duckdb, "name": "lakehouse.gold.smoke_daily_revenue"}],
           "outputs": [{"namespace": duckdb, "name": "lakehouse.staging.stg_revenue", "facets": {"columnLineage": {
               "fields": {"revenue": {"inputFields": [{"namespace": duckdb, "name": "lakehouse.gold.smoke_daily_revenue",
                                                       "field": "revenue"}]}}}}}]}
    log.write_text("\n".join(json.dumps(e) for e in [_event("smoke.append", first), _event("smoke.merge", second), dbt])
                   + "\nnot json\n")
    assert lineage.record_lineage(log)["edges"] == 5  # append: 1, merge: 2, dbt: 2
    lineage.record_lineage(log)
    assert len(read_ops(lineage.EDGES)) == 5  # folding the log again adds nothing: merged by job, direction, dataset
    graph = lineage.lineage_graph()
    assert lineage.downstream_chain(graph, "bronze/smoke_orders") == [
        "bronze/smoke_orders", "gold/smoke_daily_revenue", "dbt/staging.stg_revenue"]
    assert graph["columns"]["dbt/staging.stg_revenue"] == {"revenue": ["gold/smoke_daily_revenue.revenue"]}


def _run(job: str, run_id: str, inputs: list[str], outputs: list[str], time: str = "2026-01-01T00:00:00Z") -> dict:
    return {"eventType": "COMPLETE", "eventTime": time, "run": {"runId": run_id},
            "job": {"namespace": "lakehouse", "name": job},
            "inputs": [{"namespace": "lakehouse", "name": n} for n in inputs],
            "outputs": [{"namespace": "lakehouse", "name": n} for n in outputs]}


def _pairs(graph) -> set[tuple[str, str]]:
    return {(e["source"], e["target"]) for e in graph["edges"]}


def test_a_mapped_task_links_each_run_s_inputs_to_that_run_s_outputs_only(lakehouse_root):
    """cdc_apply's merge_changes_into_silver.expand(table=...): one run per map index, each
    reading its own topic (and its silver table) and writing its silver table."""
    job = "cdc_apply.merge_changes_into_silver"
    events = [_run(job, "run-a", ["bronze/shop.public.a", "silver/a"], ["silver/a"]),
              _run(job, "run-b", ["bronze/shop.public.b", "silver/b"], ["silver/b"]),
              # a plain task: every input feeds every output
              _run("build.gold", "run-g", ["silver/a", "silver/b"], ["gold/x", "gold/y"])]
    expected = {("bronze/shop.public.a", "silver/a"), ("bronze/shop.public.b", "silver/b"),
                ("silver/a", "gold/x"), ("silver/a", "gold/y"), ("silver/b", "gold/x"), ("silver/b", "gold/y")}
    graph = lineage.graph_of(lineage.edges_from_events(events))
    assert _pairs(graph) == expected
    assert lineage.downstream_chain(graph, "bronze/shop.public.a") == ["bronze/shop.public.a", "silver/a", "gold/x", "gold/y"]

    # the same through ops/lineage_edges, also when the log is folded again
    log = lakehouse_root.parent / "events.jsonl"
    log.write_text("\n".join(json.dumps(e) for e in events))
    lineage.record_lineage(log)
    lineage.record_lineage(log)
    assert _pairs(lineage.lineage_graph()) == expected


def test_a_run_s_sources_add_up_across_runs_and_old_rows_keep_the_job_level_rule(lakehouse_root):
    """A task whose runs read different tables keeps every table it read into an output; edge rows
    written before sources were recorded (no `sources` column) still link job inputs to outputs."""
    old_schema = pa.schema([(f.name, f.type) for f in lineage.EDGE_SCHEMA if f.name != "sources"])
    old = [{"job": "old.job", "direction": d, "namespace": "lakehouse", "dataset": n, "event_time": "2025-12-31T00:00:00Z"}
           for d, n in (("in", "bronze/p"), ("in", "bronze/q"), ("out", "silver/p"), ("out", "silver/q"))]
    merge_upsert(lineage.EDGES, pa.Table.from_pylist(old, schema=old_schema), keys=["job", "direction", "namespace", "dataset"])
    log = lakehouse_root.parent / "events.jsonl"
    log.write_text(json.dumps(_run("daily.job", "r1", ["silver/p"], ["gold/z"], "2026-01-01T00:00:00Z")) + "\n")
    lineage.record_lineage(log)
    log.write_text(json.dumps(_run("daily.job", "r2", ["silver/q"], ["gold/z"], "2026-01-02T00:00:00Z")) + "\n")
    lineage.record_lineage(log)
    assert _pairs(lineage.lineage_graph()) == {
        ("bronze/p", "silver/p"), ("bronze/p", "silver/q"), ("bronze/q", "silver/p"), ("bronze/q", "silver/q"),
        ("silver/p", "gold/z"), ("silver/q", "gold/z")}
