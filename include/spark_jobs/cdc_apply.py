"""Spark job: apply what bronze received to silver for one or more CDC tables, on Spark.

Args: CDC table names from sources.yaml (`cdc:`), e.g. `customers orders`. Same semantics,
positions and results as the delta-rs path (include/lakehouse/spark/changes.py); tables
whose registry entry says `engine: spark` get this path from the regular DAG as well.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from include.lakehouse.cdc.flow import apply_bronze_changes  # noqa: E402
from include.lakehouse.spark.jobs import run_job  # noqa: E402


def main(spark, args):
    if not args:
        raise ValueError("cdc_apply needs at least one CDC table name (sources.yaml cdc:)")
    return {"tables": [apply_bronze_changes(table, spark=spark) for table in args]}


if __name__ == "__main__":
    run_job(main)
