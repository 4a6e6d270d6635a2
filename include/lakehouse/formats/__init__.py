"""The multi-format week: every registered Delta table also readable as Iceberg and Hudi.

Delta stays the one table the pipelines write; `publish` translates each new Delta version
into an Iceberg snapshot (add_files of the Delta files: no data copied) and a Hudi commit
(hardlinked base files, a timeline from the Delta log), `query` reads any of the three with
DuckDB, `benchmark` compares them on generated data.
Never writes Delta: Delta stays the one table the pipelines write.
"""
