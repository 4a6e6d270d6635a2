"""The table layer: the registry (registry.py: names, specs, the one place table paths are built)
and the Delta primitives (delta.py: the only code that creates, writes, merges or deletes Delta
tables). Every other stage names tables and hands rows here.
Never imported for side effects: opening or creating a table happens only when called."""
