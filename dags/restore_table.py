"""
### restore_table

On-call's time machine: restores one registered table to an earlier **version** or
**timestamp** (one of them, not both), as a new commit (history is kept), and records who
asked and why in `ops/maintenance_log`. A version whose files were vacuumed, a timestamp
before the table existed or in the future, and the current version are refused.
Defaults are a **dry run**: with no version it lists the newest versions; with one it checks
that it is restorable and reports row counts and positions without changing anything; set
`dry_run` to false to restore.

**Positions roll back with the data.** The offsets, loaded files and upstream versions the
table records go back to their values at the target, so the next ingest / CDC run reads
again everything after it (exactly once). **Downstream tables are not touched**: the report's
`downstream` lists each table that already consumed changes the restore undid (e.g. the gold
dimensions built from a restored silver table) and the version to restore it to; until it is
restored, its CDC / SCD2 task fails with RestoredUpstreamError rather than apply the undo as
changes. Restore those too (dry run first), then rerun the pipeline.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from lakehouse_airflow.assets import table_asset
from lakehouse_airflow.defaults import dag_args


@dag(**dag_args(
    "restore_table", doc_md=__doc__, schedule=None, tags=["ops", "delta", "on-call"],
    params={
        "table": Param("gold/smoke_daily_revenue", type="string", description="registered table, e.g. silver/customers"),
        "version": Param(None, type=["null", "integer"], minimum=0, description="version to restore to"),
        "timestamp": Param(None, type=["null", "string"], description="or: ISO timestamp to restore to (UTC if no offset)"),
        "reason": Param("demo: list the versions on-call can restore to", type="string", minLength=5),
        "dry_run": Param(True, type="boolean", description="only check and report; restore when false"),
    },
))
def restore_table():
    @task(outlets=[table_asset("ops/maintenance_log")])
    def restore_requested_version(params=None, dag_run=None, ti=None):
        from include.lakehouse.maintenance.restore import restore_to

        return restore_to(
            params["table"], version=params["version"], timestamp=params["timestamp"], reason=params["reason"],
            dry_run=bool(params["dry_run"]), run_id=dag_run.run_id, try_number=getattr(ti, "try_number", None),
            requested_by=getattr(dag_run, "triggering_user_name", None) or "unknown",
        )

    restore_requested_version()


restore_table()
