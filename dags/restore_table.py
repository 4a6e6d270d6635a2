"""
### restore_table

On-call's time machine: restores one registered table to an earlier **version** or
**timestamp**, as a new commit (history is kept), and records who asked and why in
`ops/maintenance_log`. A version whose files were vacuumed is refused with a clear message.
Defaults are a **dry run**: it checks that the target is restorable and reports row counts
without changing anything; set `dry_run` to false to restore.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from lakehouse_airflow.assets import table_asset
from lakehouse_airflow.defaults import dag_args


@dag(**dag_args(
    "restore_table", doc_md=__doc__, schedule=None, tags=["ops", "delta", "on-call"],
    params={
        "table": Param("gold/smoke_daily_revenue", type="string", description="registered table, e.g. silver/customers"),
        "version": Param(0, type=["null", "integer"], minimum=0, description="version to restore to"),
        "timestamp": Param(None, type=["null", "string"], description="or: ISO timestamp to restore to"),
        "reason": Param("demo: check that the first version is restorable", type="string", minLength=5),
        "dry_run": Param(True, type="boolean", description="only check and report; restore when false"),
    },
))
def restore_table():
    @task(outlets=[table_asset("ops/maintenance_log")])
    def restore_requested_version(params=None, dag_run=None) -> dict:
        from include.lakehouse.maintenance_policy import restore_to

        return restore_to(
            params["table"], version=params["version"], timestamp=params["timestamp"], reason=params["reason"],
            dry_run=bool(params["dry_run"]), run_id=dag_run.run_id,
            requested_by=getattr(dag_run, "triggering_user_name", None) or "unknown",
        )

    restore_requested_version()


restore_table()
