"""
### dbt_transform

The dbt project in `include/dbt` (sources -> staging -> intermediate -> marts), rendered by
**astronomer-cosmos** in its WATCHER mode: one producer task (`dbt.dbt_producer_watcher`) runs
`dbt source freshness` and then one `dbt build` of the whole project; every source, model and
model's tests is its own sensor task that follows its node's result as the build reports it
(deferred to the triggerer while it waits), so each has its own state and log in the UI, and a
failing model or test fails its own task and stops only what depends on it. A test across models
(relationships, the singular revenue check) is its own task. A source past its freshness
`error_after` fails its task and the models it feeds are left out of the build; `warn_after`
only warns. A retry never runs the whole build again: a retried producer skips, and a
retried (or cleared) model task runs that model alone.
Rendered from the manifest built ahead of time (`make`, the Dockerfile, into
`DBT_MANIFEST_PATH`), so parsing this file never runs dbt. Without a manifest (a fresh clone
before `make`, an image built without it) the DAG still parses: its one `dbt_manifest_missing`
task fails every run with what to do, instead of an import error.

Target from `DBT_TARGET`: `local` (DuckDB reading the Delta tables in place; only the producer
holds the one-slot `dbt` pool, DuckDB has one writer, and dbt's `threads` set the build's
parallelism), `spark` or `databricks` (same producer and sensors; with `DBT_EXECUTABLE_PATH` the
producer runs that dbt as a subprocess and reads its JSON log). On `local`, `publish_marts` then
copies the marts to `gold/<mart>` Delta tables and announces them as Assets (feature_build and
other engines read them there).

Runs when cdc_apply has updated silver orders and scd2_dimensions the customer dimension.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from airflow.sdk import DAG, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, SourceRenderingBehavior, TestBehavior, TestIndirectSelection

from include.lakehouse.transform import dbt_project as dbt
from lakehouse_airflow.assets import table_asset
from lakehouse_airflow.dbt_watcher import own_results_for_detached_tests, skip_after_freshness_errors
from lakehouse_airflow.defaults import dag_args

with DAG(**dag_args("dbt_transform", doc_md=__doc__, tags=["dbt", "gold"],
                    schedule=table_asset("silver/orders") & table_asset("gold/dim_customer"))):
    @task
    def check_sources():
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
            # WATCHER: one producer task runs `dbt source freshness` then one `dbt build` of the whole
            # project (the only task in the `dbt` pool: one DuckDB writer); every source, model and
            # model's tests is a sensor task that reads its node's result from the producer's XComs
            # (deferred to the triggerer while it waits) and fails when that node failed
            execution_config=ExecutionConfig(
                execution_mode=ExecutionMode.WATCHER,
                test_indirect_selection=TestIndirectSelection.CAUTIOUS,
                # the producer alone holds the pool; its retry never builds again (Cosmos skips it):
                # the task of each model the build did not finish then runs that model alone
                setup_operator_args={"pool": "dbt",
                                     "freshness_callback": skip_after_freshness_errors},
                # dbt in process; with DBT_EXECUTABLE_PATH (databricks target), that dbt as a subprocess
                **({"invocation_mode": InvocationMode.SUBPROCESS, "dbt_executable_path": dbt.dbt_executable()}
                   if dbt.dbt_executable() else {"invocation_mode": InvocationMode.DBT_RUNNER})),
            render_config=RenderConfig(
                load_method=LoadMode.DBT_MANIFEST,
                test_behavior=TestBehavior.AFTER_EACH,
                source_rendering_behavior=SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS,
                should_detach_multiple_parents_tests=True,
                emit_datasets=False,  # the lakehouse's own Assets are announced by publish_marts
            ),
            # sensors poll the producer's XComs every second (Cosmos' default is 10 s); a sensor's retry
            # only reads its node's result again (or runs its one model), so it comes after 2 s: Airflow
            # 3.3 can fail a sensor resumed from the triggerer within a second (the executor's event of
            # its deferral arrives after the resumed try started: "task state changed externally")
            operator_args={"install_deps": False, "env": dbt.dbt_env(), "poke_interval": 1,
                           "retry_delay": timedelta(seconds=2), "retry_exponential_backoff": False},
        )
        own_results_for_detached_tests(transform)
    else:
        logging.getLogger(__name__).warning(dbt.missing_manifest_message(manifest))

        @task(task_id="dbt_manifest_missing")
        def dbt_manifest_missing() -> None:
            """Stands in for the dbt tasks until the manifest exists; never runs dbt."""
            from include.lakehouse.errors import LakehouseError

            raise LakehouseError(dbt.missing_manifest_message())

        transform = dbt_manifest_missing()

    @task(outlets=[table_asset(f"gold/{mart}") for mart in dbt.marts()])
    def publish_marts():
        """Copy the marts from DuckDB to gold/<mart> Delta tables (local target only)."""
        from airflow.sdk.exceptions import AirflowSkipException

        if dbt.target() != "local":
            raise AirflowSkipException(f"target {dbt.target()}: the marts already live in its catalog")
        from lakehouse_airflow.reports import marts_published

        results = [r.to_dict() for r in dbt.publish_marts()]
        return {"rows_inserted": sum(r["rows_inserted"] for r in results), **marts_published(results)}

    check_sources() >> transform >> publish_marts()
