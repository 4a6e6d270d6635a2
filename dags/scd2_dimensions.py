"""
### scd2_dimensions

Builds the **type 2 dimensions** `gold/dim_customer` and `gold/dim_product` from the silver
change feed: a new version when a tracked attribute changes (customer: city, country,
segment, email; product: category, price), type 1 corrections (name) applied to every
version, `valid_from` = the change's source time, `valid_to` = the next version's
`valid_from`, `is_current`, `is_deleted` (closed by a source delete), a row hash and a
stable surrogate key. Late changes split the interval they fall into; a rerun changes
nothing. Runs when cdc_apply updates silver.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from lakehouse_airflow.assets import any_of, configured_dimensions, table_asset
from lakehouse_airflow.defaults import dag_args
from lakehouse_airflow.operators.data_quality import DataQualityOperator

DIMENSIONS = configured_dimensions()  # gold dimension -> silver source, from sources.yaml


@dag(**dag_args("scd2_dimensions", doc_md=__doc__,
                schedule=any_of([table_asset(f"silver/{s}") for s in sorted(set(DIMENSIONS.values()))]),
                tags=["scd2", "gold"]))
def scd2_dimensions():
    @task(map_index_template="{{ task.op_kwargs['dimension'] }}")
    def apply_silver_changes_to_dimension(dimension: str):
        from include.lakehouse.dimensions.build import build_dimension

        from lakehouse_airflow import reports

        result = build_dimension(dimension)
        print(reports.dimension_line(result))
        return {**result, **reports.dimension_built(result)}

    @task(outlets=[table_asset(f"gold/{d}") for d in DIMENSIONS])
    def announce_dimensions(results: list[dict]):
        """One asset event per dimension per run, once both are built."""
        return {"versions": [r.get("version") for r in results]}

    built = apply_silver_changes_to_dimension.expand(dimension=list(DIMENSIONS))
    built >> DataQualityOperator(task_id="validate_dim_customer", suite="gold_dim_customer") >> announce_dimensions(built)


scd2_dimensions()
