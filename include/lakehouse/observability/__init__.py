"""Observability of the lakehouse (the observe_lakehouse DAG and the "Lakehouse health" page):
per registered table freshness against its SLA, volume against the trailing history, schema
changes, and the latest quality and drift results, recorded in `ops/` tables; lineage edges
from the OpenLineage events (lineage.py)."""
