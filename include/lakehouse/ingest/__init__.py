"""Getting raw data into bronze exactly once: landing files (files.py) and Kafka topics (kafka.py).
Never writes beyond bronze and quarantine, never through anything but tables.delta."""
