"""Change data capture: Debezium envelopes (debezium.py), applying changes to a current-state
table (apply.py) and the bronze -> silver batch (flow.py).
Never writes Delta except through tables.delta."""
