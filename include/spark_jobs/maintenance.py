"""Spark job: each named table's maintenance policy; OPTIMIZE / ZORDER BY through Delta's SQL
where the engine has it, the table layer otherwise (include/lakehouse/spark/maintenance.py).

Args: registered table names, e.g. `silver/customers gold/dim_customer`.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from include.lakehouse.spark.jobs import run_job  # noqa: E402
from include.lakehouse.spark.maintenance import maintain  # noqa: E402


def main(spark, args):
    if not args:
        raise ValueError("maintenance needs at least one registered table name")
    return {"tables": [maintain(spark, name) for name in args]}


if __name__ == "__main__":
    run_job(main)
