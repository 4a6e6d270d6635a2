"""Airflow-side pieces of the lakehouse: DAG defaults, assets, notifiers, deadline callbacks
and custom operators. Lives in `plugins/` so that every Airflow component (scheduler,
triggerer, workers, dag-processor) can import it; the engine itself is `include.lakehouse`.
"""
