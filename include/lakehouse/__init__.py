"""The shared lakehouse package: every table operation, the Spark bridge and the shop source.

DAG files, operators, Spark jobs and tests import from here; nothing here may import
Airflow at module level (Spark jobs and tests run without it) or touch storage at import.
"""
