"""The WATCHER corrections dbt_transform applies on top of Cosmos (plugins/lakehouse_airflow/dbt_watcher.py)."""

from __future__ import annotations

from types import SimpleNamespace


def node(resource_type: str, *depends_on: str):
    return SimpleNamespace(resource_type=resource_type, depends_on=list(depends_on))


def test_freshness_warning_runs_everything_an_error_skips_all_it_feeds():
    from lakehouse_airflow.dbt_watcher import skip_after_freshness_errors

    nodes = {"source.p.silver.orders": node("source"), "source.p.gold.dim": node("source"),
             "model.p.stg_orders": node("model", "source.p.silver.orders"),
             "model.p.stg_dim": node("model", "source.p.gold.dim"),
             "model.p.joined": node("model", "model.p.stg_orders", "model.p.stg_dim"),
             "test.p.not_null_joined": node("test", "model.p.joined")}

    def skipped(status):
        result = {"results": [{"unique_id": "source.p.silver.orders", "status": status}]}
        return {uid for uid, state in skip_after_freshness_errors({}, None, None, nodes, result)}

    assert skipped("warn") == skipped("pass") == set()
    # one stale parent is enough: `joined` would read a staging table the build did not refresh
    assert skipped("error") == {"model.p.stg_orders", "model.p.joined"}
