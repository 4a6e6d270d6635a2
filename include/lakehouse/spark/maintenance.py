"""Table maintenance from a Spark job: Delta's own OPTIMIZE / ZORDER BY where the engine has
them, the table layer's policy (maintenance_policy.apply_policy) for everything else.

Engines with Delta SQL maintenance (delta-spark jars, Databricks) compact and z-order the
table themselves: at 1B+ rows a rewrite is a distributed job, not one process. VACUUM and
checkpoints always go through the table layer, whatever the engine: its vacuum keeps the
retention guard and refuses to delete files another format still references (file pinners),
which Delta's VACUUM knows nothing of. Sail (no OPTIMIZE/VACUUM statements) and JVM Spark
without the jars (no Delta at all) run the table layer's whole policy.
"""

from __future__ import annotations

from typing import Any

import include.lakehouse.maintenance.operations as m
from include.lakehouse.maintenance.policy import apply_policy
from include.lakehouse.spark.bridge import _spark_path
from include.lakehouse.spark.session import native_delta
from include.lakehouse.tables.delta import try_open
from include.lakehouse.tables.registry import get_table

_OPTIMIZE_FLAG = "_lakehouse_delta_sql_optimize"


def delta_sql_optimize(spark) -> bool:
    """Whether the engine runs Delta's OPTIMIZE statement (asked once per session)."""
    known = getattr(spark, _OPTIMIZE_FLAG, None)
    if known is None:
        known = False
        if native_delta(spark):
            try:
                spark.sql("OPTIMIZE delta.`/nonexistent-lakehouse-probe`").collect()
            except Exception as exc:  # a parse error: no such statement; anything else: it exists
                text = str(exc).lower()
                known = not any(w in text for w in ("parse", "syntax", "expected something else", "found optimize"))
        setattr(spark, _OPTIMIZE_FLAG, known)
    return known


def maintain(spark, name: str, *, retention_hours: int | None = None) -> dict[str, Any]:
    """The table's maintenance policy, with compaction and z-order on the engine when it can."""
    spec = get_table(name)
    if try_open(spec.uri) is None or not delta_sql_optimize(spark):
        return {**apply_policy(name, retention_hours=retention_hours), "engine": "table layer"}
    path = _spark_path(spec.uri).replace("`", "``")
    steps = []
    columns = list(spec.maintenance.z_order_by)
    if columns and m.changed_since_z_order(spec):
        spark.sql(f"OPTIMIZE delta.`{path}` ZORDER BY ({', '.join(columns)})").collect()
        steps.append(f"OPTIMIZE ZORDER BY {','.join(columns)}")
    else:
        spark.sql(f"OPTIMIZE delta.`{path}`").collect()
        steps.append("OPTIMIZE")
    vacuum = m.vacuum(spec, retention_hours=retention_hours)
    steps.append(f"vacuum removed {vacuum.files_removed} file(s)" if not vacuum.details.get("refused")
                 else "vacuum refused (files still referenced by another format)")
    if spec.maintenance.checkpoint:
        m.checkpoint(spec)
        steps.append("checkpoint")
    return {"table_name": name, "operation": "maintenance", "status": "success", "engine": "spark",
            "detail": "; ".join(steps)}
