"""The dbt project builds on the lakehouse: DuckDB locally, the same models on Spark."""

from __future__ import annotations

from deltalake import DeltaTable

from include.lakehouse.transform import dbt_project
from tests.transform.conftest import dbt_args, negative_amount

def duckdb_counts() -> dict[str, int]:
    con = dbt_project.connect()
    try:
        return {m: con.execute(f"SELECT count(*) FROM marts.{m}").fetchone()[0] for m in dbt_project.marts()}
    finally:
        con.close()


def test_local_build_runs_every_model_and_test_and_publishes_marts(shop_lakehouse, tmp_path):
    result = dbt_project.run_dbt(dbt_args(tmp_path, "build"))
    assert result.success, result.exception
    statuses = {r.node.resource_type: set() for r in result.result}
    for r in result.result:
        statuses[r.node.resource_type].add(str(r.status))
    assert statuses["model"] == {"success"} and statuses["test"] == {"pass"}
    counts = duckdb_counts()
    orders = DeltaTable(str(shop_lakehouse / "silver" / "orders")).count()
    assert counts["fct_orders"] == orders and counts["fct_daily_revenue"] == 4
    assert counts["dim_customers_current"] == DeltaTable(str(shop_lakehouse / "silver" / "customers")).count()

    published = dbt_project.publish_marts()
    assert {r.table.rsplit("/", 1)[-1]: r.rows_inserted for r in published} == counts
    revenue = DeltaTable(str(shop_lakehouse / "gold" / "fct_daily_revenue")).to_pyarrow_table()
    assert revenue.num_rows == 4 and all(v > 0 for v in revenue.column("revenue").to_pylist())
    again = dbt_project.publish_marts()  # a rerun replaces, never appends
    assert DeltaTable(str(shop_lakehouse / "gold" / "fct_orders")).count() == orders
    assert all(r.version == p.version + 1 for r, p in zip(again, published))


def test_bad_data_fails_the_dbt_test_that_guards_it(shop_lakehouse, tmp_path):
    negative_amount(shop_lakehouse)
    result = dbt_project.run_dbt(dbt_args(tmp_path, "build", "--select", "stg_shop__orders"))
    assert not result.success
    failed = [r.node.name for r in result.result if str(r.status) == "fail"]
    assert failed == ["non_negative_stg_shop__orders_amount"]


def test_same_models_on_spark_give_the_same_mart_counts(shop_lakehouse, tmp_path):
    """dbt-spark (method: session) on local Spark, sources registered from the Delta snapshots."""
    from include.lakehouse.spark.bridge import read_delta
    from include.lakehouse.spark.session import get_spark

    assert dbt_project.run_dbt(dbt_args(tmp_path / "duck", "build")).success
    expected = duckdb_counts()

    spark = get_spark("dbt_portability", master="local[2]",
                      conf={"spark.sql.warehouse.dir": str(tmp_path / "warehouse"),
                            "spark.sql.catalogImplementation": "in-memory"})
    for table in ("silver/customers", "silver/orders", "silver/products", "gold/dim_customer"):
        schema, name = table.split("/")
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {schema}")
        read_delta(spark, str(shop_lakehouse / table)).write.mode("overwrite").saveAsTable(f"{schema}.{name}")
    result = dbt_project.run_dbt(dbt_args(tmp_path / "spark", "build"), dbt_target="spark")
    assert result.success, result.exception
    actual = {m: spark.sql(f"SELECT count(*) FROM marts.{m}").collect()[0][0] for m in dbt_project.marts()}
    assert actual == expected


def test_the_manifest_build_leaves_partial_parse_state_a_cosmos_run_can_use(tmp_path):
    """Cosmos runs dbt in a copy of the project with `--profile lakehouse --target <target>` and
    the partial parse state of the manifest build; dbt keys that state on the command line's
    profile and target, so the build must pass the same or every run parses the whole project."""
    import shutil

    from include.lakehouse.transform.dbt_project import PROFILE, PROJECT_DIR, build_manifest, run_dbt

    manifest = build_manifest(tmp_path / "built" / "manifest.json")
    project = tmp_path / "copy"  # what Cosmos does: the project copied, the partial parse file beside
    shutil.copytree(PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    (project / "target").mkdir()
    shutil.copy(manifest.parent / "partial_parse.msgpack", project / "target" / "partial_parse.msgpack")

    events: list[str] = []
    result = run_dbt(["ls", "--quiet", "--profile", PROFILE, "--target", "local", "--no-static-parser"],
                     dbt_target="local", project_dir=project, callbacks=[lambda e: events.append(e.info.name)])
    assert result.success
    assert "UnableToPartialParse" not in events and "PartialParsingNotEnabled" not in events, \
        [e for e in events if "Partial" in e]
