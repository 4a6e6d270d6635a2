"""
### dbt_transform

The dbt project in `include/dbt` (sources -> staging -> intermediate -> marts), rendered by
**astronomer-cosmos**: every model is a task followed by its tests, every source with a
freshness rule is a freshness task, and a failing model or test fails its task and stops
only what depends on it. Rendered from the manifest built ahead of time (`make`, the
Dockerfile, into `DBT_MANIFEST_PATH`), so parsing this file never runs dbt. Without a manifest
(a fresh clone before `make`, an image built without it) the DAG still parses: its one
`dbt_manifest_missing` task fails every run with what to do, instead of an import error.

Target from `DBT_TARGET`: `local` (DuckDB reading the Delta tables in place; one dbt task at a
time through the `dbt` pool, DuckDB has one writer), `spark` or `databricks`. On `local`,
`publish_marts` then copies the marts to `gold/<mart>` Delta tables and announces them as
Assets (feature_build and other engines read them there).

Runs when cdc_apply has updated silver orders and scd2_dimensions the customer dimension.
"""

from __future__ import annotations

import logging

from airflow.sdk import DAG, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import InvocationMode, LoadMode, SourceRenderingBehavior, TestBehavior, TestIndirectSelection

from include.lakehouse.transform import dbt_project as dbt
from lakehouse_airflow.assets import table_asset
from lakehouse_airflow.defaults import dag_args

with DAG(**dag_args("dbt_transform", doc_md=__doc__, tags=["dbt", "gold"],
                    schedule=table_asset("silver/orders") & table_asset("gold/dim_customer"))):
    @task
    def check_sources() -> dict:
        """Fail early and clearly when a source table is missing; make the DuckDB file's folder."""
        return dbt.check_sources()

    manifest = dbt.manifest_path()
    if manifest.exists():
        transform = DbtTaskGroup(
            group_id="dbt",
            project_config=ProjectConfig(dbt_project_path=dbt.PROJECT_DIR, manifest_path=manifest,
                                         project_name="lakehouse"),
            profile_config=ProfileConfig(profile_name=dbt.PROFILE, target_name=dbt.target(),
                                         profiles_yml_filepath=dbt.PROJECT_DIR / "profiles.yml"),
            # a model's test task runs the tests of that model alone; a test across models (the
            # singular revenue check, relationships) is its own task after all of its parents
            # dbt in process; with DBT_EXECUTABLE_PATH (databricks target), that dbt as a subprocess
            execution_config=ExecutionConfig(
                test_indirect_selection=TestIndirectSelection.CAUTIOUS,
                **({"invocation_mode": InvocationMode.SUBPROCESS, "dbt_executable_path": dbt.dbt_executable()}
                   if dbt.dbt_executable() else {"invocation_mode": InvocationMode.DBT_RUNNER})),
            render_config=RenderConfig(
                load_method=LoadMode.DBT_MANIFEST,
                test_behavior=TestBehavior.AFTER_EACH,
                source_rendering_behavior=SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS,
                should_detach_multiple_parents_tests=True,
                emit_datasets=False,  # the lakehouse's own Assets are announced by publish_marts
            ),
            operator_args={"install_deps": False, "pool": "dbt", "env": dbt.dbt_env()},
        )
    else:
        logging.getLogger(__name__).warning(dbt.missing_manifest_message(manifest))

        @task(task_id="dbt_manifest_missing")
        def dbt_manifest_missing() -> None:
            """Stands in for the dbt tasks until the manifest exists; never runs dbt."""
            from include.lakehouse.errors import LakehouseError

            raise LakehouseError(dbt.missing_manifest_message())

        transform = dbt_manifest_missing()

    @task(outlets=[table_asset(f"gold/{mart}") for mart in dbt.marts()])
    def publish_marts() -> dict:
        """Copy the marts from DuckDB to gold/<mart> Delta tables (local target only)."""
        from airflow.sdk.exceptions import AirflowSkipException

        if dbt.target() != "local":
            raise AirflowSkipException(f"target {dbt.target()}: the marts already live in its catalog")
        from lakehouse_airflow.reports import marts_published

        results = [r.to_dict() for r in dbt.publish_marts()]
        return {"rows_inserted": sum(r["rows_inserted"] for r in results), **marts_published(results)}

    check_sources() >> transform >> publish_marts()
