"""Spark for the lakehouse: one session factory and the Delta bridge (see session.py, bridge.py).
Never makes a SparkSession at import."""
