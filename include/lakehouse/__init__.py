"""The shared lakehouse package: every table operation, the Spark bridge and the shop source.

DAG files, operators, Spark jobs and tests import from here; nothing here may import
Airflow at module level (Spark jobs and tests run without it) or touch storage at import.
Stage packages: tables/ (registry, the one Delta write path), source/, ingest/, cdc/, dimensions/,
maintenance/, quality/, transform/, formats/, ml/, spark/. Never formats reports (the Airflow side does).
"""
