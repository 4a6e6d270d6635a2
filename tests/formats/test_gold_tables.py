"""The real gold tables (SCD2 dimension, dbt marts published to Delta) in all three formats:
publish_all publishes every registered gold table that exists, and each reads the same rows
in Delta, Iceberg and Hudi (their real types: decimals, dates, timestamps, booleans)."""

from __future__ import annotations

from include.lakehouse.formats import publish, query
from include.lakehouse.transform import dbt_project
from tests.transform.conftest import dbt_args, shop_lakehouse  # noqa: F401 - the fixture


def test_every_gold_table_of_the_pipeline_reads_the_same_in_every_format(shop_lakehouse, tmp_path):  # noqa: F811
    assert dbt_project.run_dbt(dbt_args(tmp_path, "run")).success
    dbt_project.publish_marts()
    results = publish.publish_all(run_id="test")
    published = {r["table"] for r in results if r["status"] == "published"}
    assert {"gold/dim_customer", "gold/fct_orders", "gold/fct_daily_revenue", "gold/dim_customers_current",
            "gold/customer_lifetime_value"} <= published, results
    assert not [r for r in results if r["status"] == "failed"], results
    con = query.connect()
    for table in sorted(published):
        prints = [query.fingerprint(table, fmt, con=con) for fmt in query.FORMATS]
        assert prints[0]["rows"] > 0 and prints[0] == prints[1] == prints[2], (table, prints)
    assert all(f["snapshots_written"] == 0 for r in publish.publish_all() if r["status"] == "published"
               for f in r["formats"])  # a rerun is a no-op
