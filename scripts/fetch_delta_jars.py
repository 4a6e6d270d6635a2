"""Fetch the delta-spark jars (and what they depend on) into one folder, once, at image build.

The Dockerfile runs this so a running container never needs Maven: session.py and the
SparkJobOperator pick the jars up from LAKEHOUSE_DELTA_JARS. The Maven coordinates come from
the installed delta-spark package (`configure_spark_with_delta_pip`), so the jars always match
the pinned delta-spark and pyspark. Needs Java and Maven Central (this laptop has no Maven:
it runs in the image build only).

    python scripts/fetch_delta_jars.py /usr/local/airflow/delta_jars

LAKEHOUSE_DELTA_JARS_FETCH=skip makes the folder and fetches nothing (the Astro emulation in
tests/astro builds the image without Maven): sessions then use the jar-free bridge (`auto`).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path


def fetch(target: Path) -> list[Path]:
    from delta import configure_spark_with_delta_pip
    from pyspark.sql import SparkSession

    ivy = Path(tempfile.mkdtemp(prefix="delta-ivy-"))
    builder = (SparkSession.builder.master("local[1]").appName("fetch-delta-jars")
               .config("spark.jars.ivy", str(ivy)).config("spark.ui.enabled", "false"))
    spark = configure_spark_with_delta_pip(builder).getOrCreate()
    spark.stop()
    target.mkdir(parents=True, exist_ok=True)
    jars = sorted((ivy / "jars").glob("*.jar"))
    if not any(j.name.startswith("io.delta_delta-spark") for j in jars):
        raise SystemExit(f"no delta-spark jar was fetched into {ivy / 'jars'}: is Maven Central reachable?")
    for jar in jars:
        shutil.copy2(jar, target / jar.name)
    return [target / j.name for j in jars]


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/local/airflow/delta_jars")
    if os.environ.get("LAKEHOUSE_DELTA_JARS_FETCH") == "skip":
        folder.mkdir(parents=True, exist_ok=True)
        print(f"delta jars: fetch skipped (LAKEHOUSE_DELTA_JARS_FETCH=skip); {folder} left empty")
        sys.exit(0)
    for path in fetch(folder):
        print(path)
