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
