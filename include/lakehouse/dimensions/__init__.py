"""Type 2 dimensions: the SCD2 merge (scd2.py) and the silver -> gold batch (build.py).
Never writes Delta except through tables.delta."""
