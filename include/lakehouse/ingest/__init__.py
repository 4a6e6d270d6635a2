"""Getting raw data into bronze exactly once (files.py: landing files)."""
