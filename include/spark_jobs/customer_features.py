"""Spark job: point-in-time customer features for churn (include/lakehouse/ml/features.py).

Args: one or more as-of dates (YYYY-MM-DD). Each date's partition of
features/customer_features is replaced; the source table versions read are recorded.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from include.lakehouse.ml.features import SOURCES, build_features  # noqa: E402
from include.lakehouse.ml.settings import FEATURES_TABLE  # noqa: E402
from include.lakehouse.spark.jobs import run_job  # noqa: E402

# the job contract's lineage: registered tables read and written (reported by SparkJobOperator)
READS = sorted(SOURCES.values())
WRITES = [FEATURES_TABLE]


def main(spark, args):
    if not args:
        raise ValueError("customer_features needs at least one as-of date (YYYY-MM-DD)")
    return build_features(spark, list(args))


if __name__ == "__main__":
    run_job(main)
