"""Getting raw data into bronze exactly once: landing files (files.py) and Kafka topics (kafka.py)."""
