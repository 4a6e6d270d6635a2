# Astro Runtime 3.3 (Airflow 3.3). `astro dev start` builds this image; requirements.txt and
# packages.txt are installed by the runtime's ONBUILD steps.
FROM astrocrpublic.azurecr.io/runtime:3.3-2

# include/ (the lakehouse package) and plugins/ must be importable by every component,
# including the triggerer that runs deadline callbacks by dotted path.
ENV PYTHONPATH=/usr/local/airflow:/usr/local/airflow/plugins \
    JAVA_HOME=/usr/lib/jvm/default-java \
    LAKEHOUSE_ROOT=/usr/local/airflow/.local/lakehouse \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False \
    GX_ANALYTICS_ENABLED=False

# Cosmos renders dbt_transform from a manifest built here, once, not at DAG parse time
# (the runtime's ONBUILD steps have copied the project into /usr/local/airflow already).
RUN cd /usr/local/airflow && python -m include.lakehouse.dbt_project
