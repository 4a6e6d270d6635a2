# Astro Runtime 3.3-2 (Airflow 3.3.2), its Python 3.11 variant: the Python requirements-lock.txt is
# resolved and tested with (the default variant is newer). `astro dev start` builds this image;
# requirements.txt and packages.txt are installed by the runtime's ONBUILD steps, which also copy
# the project into /usr/local/airflow. tests/astro/test_image_fidelity.py checks this file.
FROM astrocrpublic.azurecr.io/runtime:3.3-2-python-3.11

# include/ (the lakehouse package) and plugins/ must be importable by every component,
# including the triggerer that runs deadline callbacks by dotted path.
# `astro dev start` bind-mounts dags/, plugins/, include/ and tests/ over the image, and each
# component is its own container: so the dbt manifest and the Delta jars are built outside those
# folders (dbt_manifest/, delta_jars/), and all state (Delta tables, dbt's DuckDB file, MLflow, GX, reports, the alert outbox)
# lives under lakehouse_state/, the named volume docker-compose.override.yml mounts into every
# component (or set LAKEHOUSE_ROOT to s3://, abfss://, gs://).
# LAKEHOUSE_DELTA_JARS: the delta-spark jars fetched below; Spark sessions and spark-submit
# get native Delta from them (include/lakehouse/spark/session.py), no Maven at run time.
# OpenLineage: the project's extractor reports the tables each task touched; events go to a file
# on the shared volume (observe_lakehouse folds them into ops/lineage_edges for the Lineage page);
# docker-compose.override.yml also sends them to Marquez. Emitted from a thread, not a fork
# (delta-rs panics in a forked child).
ENV PYTHONPATH=/usr/local/airflow:/usr/local/airflow/plugins \
    JAVA_HOME=/usr/lib/jvm/default-java \
    LAKEHOUSE_ROOT=/usr/local/airflow/lakehouse_state/lakehouse \
    LAKEHOUSE_ALERTS_FILE=/usr/local/airflow/lakehouse_state/alerts/alerts.jsonl \
    DBT_MANIFEST_PATH=/usr/local/airflow/dbt_manifest/manifest.json \
    LAKEHOUSE_DELTA_JARS=/usr/local/airflow/delta_jars \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False \
    AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY=False \
    GX_ANALYTICS_ENABLED=False \
    AIRFLOW__OPENLINEAGE__NAMESPACE=lakehouse \
    AIRFLOW__OPENLINEAGE__EXTRACTORS=lakehouse_airflow.lineage_extractor.LakehouseExtractor \
    AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD=True \
    AIRFLOW__OPENLINEAGE__TRANSPORT='{"type": "file", "log_file_path": "/usr/local/airflow/lakehouse_state/openlineage.jsonl", "append": true}'

# The Delta jars matching the pinned delta-spark/pyspark, fetched once at build time (Maven).
RUN mkdir -p /usr/local/airflow/delta_jars \
    && cd /usr/local/airflow && python scripts/fetch_delta_jars.py /usr/local/airflow/delta_jars

# The volume's mount point exists in the image so Docker gives the new volume its owner (astro).
# Cosmos renders dbt_transform from the manifest built here, once, not at DAG parse time.
RUN mkdir -p /usr/local/airflow/lakehouse_state \
    && cd /usr/local/airflow && python -m include.lakehouse.transform.dbt_project
