"""On-call in the Airflow UI, in a real browser on a real Airflow: read a DAG's docs, trigger
restore_table with parameters typed into the trigger form and watch the run succeed, open the
asset graph, then the Lakehouse health and Lineage pages (after observe_lakehouse) and follow
an operator's extra link. Also: lineage events cover every task that touched a table."""

from __future__ import annotations

import json
import os
import re
from urllib.parse import quote

import pytest

from tests.ui.conftest import shot

try:
    from playwright.sync_api import expect
except ImportError:  # requirements-dev.txt has it; CI must run the suite, elsewhere it is skipped
    if os.environ.get("CI"):
        raise
    pytest.skip("playwright is not installed: run make to install requirements", allow_module_level=True)

# ~2 minutes (Airflow start, two pipeline runs, a browser): `make test-slow`, which CI runs
pytestmark = [pytest.mark.slow, pytest.mark.airflow]


def test_lineage_events_cover_every_task_that_touches_a_table(stack):
    assert stack.lineage_file.exists(), "no OpenLineage events at all: is apache-airflow-providers-openlineage installed?"
    events = [json.loads(line) for line in stack.lineage_file.read_text().splitlines()]
    complete = {}
    for e in events:
        if e["eventType"] == "COMPLETE" and e["job"]["name"].startswith("lakehouse_smoke."):
            complete[e["job"]["name"].split(".", 1)[1]] = e
    # every task of lakehouse_smoke reads or writes a table: each one's event names them
    seen = {task: ([d["name"] for d in e["inputs"]], [d["name"] for d in e["outputs"]]) for task, e in complete.items()}
    assert seen == {
        "append_orders_to_bronze": ([], ["bronze/smoke_orders"]),
        "merge_daily_revenue_into_gold": (["bronze/smoke_orders"], ["gold/smoke_daily_revenue"]),
        "check_tables_read_back": (["bronze/smoke_orders", "gold/smoke_daily_revenue"], []),
    }
    bronze = complete["append_orders_to_bronze"]["outputs"][0]
    assert bronze["namespace"] == "lakehouse"
    assert "order_id" in [f["name"] for f in bronze["facets"]["schema"]["fields"]]
    assert bronze["outputFacets"]["outputStatistics"]["rowCount"] > 0


def test_trigger_restore_table_from_the_form_and_watch_it_succeed(stack, page):
    page.goto(f"{stack.url}/dags/restore_table")
    page.get_by_role("button", name="Dag Docs").click()
    expect(page.get_by_role("dialog")).to_contain_text("On-call's time machine")
    shot(page, "restore_table-docs")
    page.keyboard.press("Escape")

    page.get_by_role("button", name="Trigger Dag").click()
    form = page.get_by_role("dialog")
    form.locator("#element_table").fill("bronze/smoke_orders")
    form.locator("#element_reason").fill("browser test: which versions can on-call restore")
    shot(page, "restore_table-trigger-form")
    form.get_by_role("button", name="Trigger", exact=True).click()
    expect(form).to_be_hidden()

    run = stack.wait(lambda: next(iter(stack.api("GET", "dags/restore_table/dagRuns?order_by=-run_after")["dag_runs"]), None),
                     "the triggered run", 30)
    assert run["conf"]["table"] == "bronze/smoke_orders" and run["conf"]["dry_run"] is True
    page.goto(f"{stack.url}/dags/restore_table/runs/{run['dag_run_id']}")
    expect(page.get_by_text("Success").first).to_be_visible(timeout=180_000)  # the UI refreshes a running run
    shot(page, "restore_table-run-succeeded")
    result = stack.api("GET", f"dags/restore_table/dagRuns/{quote(run['dag_run_id'])}/taskInstances/"
                              "restore_requested_version/xcomEntries/return_value")["value"]
    assert result["table_name"] == "bronze/smoke_orders" and result["status"] == "dry_run", result


def test_asset_graph_shows_who_writes_and_reads_a_table(stack, page):
    page.goto(f"{stack.url}/assets")
    page.get_by_role("link", name="bronze/smoke_orders", exact=True).click()
    nodes = page.locator(".react-flow__node")
    expect(nodes.filter(has_text="lakehouse_smoke")).to_have_count(1)
    expect(nodes.filter(has_text="spark_smoke")).to_have_count(1)
    shot(page, "asset-graph-bronze-smoke_orders")


def test_health_and_lineage_pages_and_an_extra_link(stack, page, browser):
    page.goto(f"{stack.url}/dags/observe_lakehouse")
    page.get_by_role("button", name="Trigger Dag").click()
    page.get_by_role("dialog").get_by_role("button", name="Trigger", exact=True).click()
    run = stack.wait(lambda: next((r for r in stack.api("GET", "dags/observe_lakehouse/dagRuns?order_by=-run_after")
                                   ["dag_runs"] if r["run_type"] == "manual"), None), "the triggered run", 30)
    stack.wait_run("observe_lakehouse", run["dag_run_id"])

    # Lakehouse health, from the menu: the smoke tables are fresh
    page.goto(stack.url)
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="Lakehouse health").click()
    health = page.frame_locator("iframe")
    expect(health.locator("h1")).to_have_text("Lakehouse health")
    for table in ("bronze/smoke_orders", "gold/smoke_daily_revenue"):
        expect(health.locator(f"tr[data-table='{table}'] [data-status]").first).to_have_text("fresh")
    expect(health.locator("#summary")).to_contain_text(re.compile(r"\d+ tables observed"))
    # run health from the DAG callbacks of the real runs (dag-processor): lakehouse_smoke succeeded
    expect(health.locator("#dag-runs tr[data-dag='lakehouse_smoke'] [data-status]")).to_have_text("success")
    shot(page, "lakehouse-health")

    # Lineage, from the menu: bronze -> gold through the merge task, drawn and listed
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="Lineage").click()
    lineage = page.frame_locator("iframe")
    expect(lineage.locator("#lineage-graph [data-dataset='gold/smoke_daily_revenue']")).to_have_count(1)
    expect(lineage.locator("#edges tr", has_text="lakehouse_smoke.merge_daily_revenue_into_gold")).to_contain_text(
        "bronze/smoke_orders")
    shot(page, "lineage")
    lineage.locator("#lineage-graph [data-dataset='gold/smoke_daily_revenue']").click()
    expect(lineage.locator("#neighbours")).to_contain_text("bronze/smoke_orders")

    # the observe task's extra link leads to the health page
    page.goto(f"{stack.url}/dags/observe_lakehouse/runs/{run['dag_run_id']}/tasks/observe_tables/details")
    page.get_by_role("link", name="Lakehouse health").click()
    page.wait_for_url(re.compile(r".*/lakehouse/health$"))
    expect(page.locator("#tables")).to_contain_text("bronze/smoke_orders")
    shot(page, "extra-link-lakehouse-health")

    # the pages need a login
    anonymous = browser.new_context()
    assert anonymous.request.get(f"{stack.url}/lakehouse/health").status == 401
    anonymous.close()
