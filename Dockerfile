# Astro Runtime 3.3 (Airflow 3.3). `astro dev start` builds this image; requirements.txt and
# packages.txt are installed by the runtime's ONBUILD steps.
FROM astrocrpublic.azurecr.io/runtime:3.3-2

# include/ (the lakehouse package) and plugins/ must be importable by every component,
# including the triggerer that runs deadline callbacks by dotted path.
# LAKEHOUSE_DELTA_JARS: the delta-spark jars fetched below; Spark sessions and spark-submit
# get native Delta from them (include/lakehouse/spark/session.py), no Maven at run time.
ENV PYTHONPATH=/usr/local/airflow:/usr/local/airflow/plugins \
    JAVA_HOME=/usr/lib/jvm/default-java \
    LAKEHOUSE_ROOT=/usr/local/airflow/.local/lakehouse \
    LAKEHOUSE_DELTA_JARS=/opt/delta-jars \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False \
    GX_ANALYTICS_ENABLED=False

# The Delta jars matching the pinned delta-spark/pyspark, fetched once at build time into a
# folder outside the bind-mounted dags/, plugins/, include/ (which would hide it).
USER root
RUN mkdir -p /opt/delta-jars && chown astro /opt/delta-jars
USER astro
RUN cd /usr/local/airflow && python scripts/fetch_delta_jars.py /opt/delta-jars

# Cosmos renders dbt_transform from a manifest built here, once, not at DAG parse time
# (the runtime's ONBUILD steps have copied the project into /usr/local/airflow already).
RUN cd /usr/local/airflow && python -m include.lakehouse.dbt_project
