"""Spark job: build type 2 dimensions from silver's change feed, on Spark.

Args: dimension names from sources.yaml (`dimensions:`), e.g. `dim_customer`. Same history,
surrogate keys and positions as the delta-rs path (include/lakehouse/spark/changes.py).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from include.lakehouse.dimensions.build import build_dimension  # noqa: E402
from include.lakehouse.spark.jobs import run_job  # noqa: E402


def main(spark, args):
    if not args:
        raise ValueError("scd2 needs at least one dimension name (sources.yaml dimensions:)")
    return {"dimensions": [build_dimension(name, spark=spark) for name in args]}


if __name__ == "__main__":
    run_job(main)
