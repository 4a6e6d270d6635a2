"""Transformations: the dbt project (dbt_project.py: profiles, manifest, Cosmos settings).
Never runs dbt at import or DAG parse time."""
