"""Transformations: the dbt project (dbt_project.py: profiles, manifest, Cosmos settings)."""
