"""Keeping tables healthy: the Delta operations (operations.py: compact, z-order, vacuum, checkpoint,
history, time travel, change feed reads), the per-table policy and its log (policy.py) and
on-call's restore (restore.py).
Never changes a table's rows except on-call's restore; never picks tables itself."""
