"""OpenLineage for the lakehouse's tasks: every task that reads or writes a registered table
reports it as a dataset (namespace `lakehouse`, name = registry name, e.g. `silver/orders`)
with its schema and row count.

Where the tables come from, per task: the tables the table layer noted while the task ran
(include/lakehouse/observability/touched.py: every append, merge, overwrite, open, read), plus
the `lakehouse://` assets in its inlets/outlets. `@task` functions get this through
LakehouseExtractor (lineage_extractor.py, registered by `[openlineage] extractors`, see
scripts/localenv.py and the Dockerfile); the project's operators through LakehouseLineageMixin's
get_openlineage_facets_on_complete. dbt models report through Cosmos (column lineage), Spark
jobs through their job contract (SparkJobOperator). Lineage never fails a task: the provider
logs extraction errors and emits the event without datasets.

Imported by the operators' modules, so by every DAG file that uses one: nothing heavy at import
(the OpenLineage provider costs ~0.5 s, paid by every parse of such a DAG file and by every DAG
callback the dag-processor runs); it is imported when a task reports its lineage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors.base import OperatorLineage


def _tables_of(assets: Any) -> list[str]:
    from include.lakehouse.observability.lineage import table_of_asset_uri

    names = []
    for asset in assets or []:
        uri = getattr(asset, "uri", None)
        name = table_of_asset_uri(uri) if isinstance(uri, str) else None
        if name:
            names.append(name)
    return names


def datasets(reads: list[str], writes: list[str]) -> tuple[list, list]:
    """OpenLineage input/output datasets for registered tables, with schema and statistics facets."""
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.generated.input_statistics_input_dataset import InputStatisticsInputDatasetFacet
    from openlineage.client.generated.output_statistics_output_dataset import OutputStatisticsOutputDatasetFacet
    from openlineage.client.generated.schema_dataset import SchemaDatasetFacet, SchemaDatasetFacetFields

    from include.lakehouse.observability.lineage import NAMESPACE, table_facts

    def facets(facts: dict[str, Any]) -> dict[str, Any]:
        if not facts["fields"]:
            return {}
        return {"schema": SchemaDatasetFacet(fields=[SchemaDatasetFacetFields(name=n, type=t) for n, t in facts["fields"]])}

    inputs, outputs = [], []
    for name in dict.fromkeys(reads):
        facts = table_facts(name)
        inputs.append(InputDataset(namespace=NAMESPACE, name=name, facets=facets(facts), inputFacets={
            "inputStatistics": InputStatisticsInputDatasetFacet(rowCount=facts["rows"], size=facts["bytes"],
                                                                fileCount=facts["files"])}))
    for name in dict.fromkeys(writes):
        facts = table_facts(name)
        outputs.append(OutputDataset(namespace=NAMESPACE, name=name, facets=facets(facts), outputFacets={
            "outputStatistics": OutputStatisticsOutputDatasetFacet(rowCount=facts["rows"], size=facts["bytes"],
                                                                   fileCount=facts["files"])}))
    return inputs, outputs


def task_lineage(task: Any, reads: list[str] = (), writes: list[str] = ()) -> OperatorLineage:
    """The task's lineage: tables the table layer noted, declared lakehouse assets, and `reads`/`writes`."""
    from airflow.providers.openlineage.extractors.base import OperatorLineage

    from include.lakehouse.observability.touched import forget, touched

    noted_in, noted_out = touched()
    outs = [*noted_out, *_tables_of(getattr(task, "outlets", None)), *writes]
    ins = [t for t in (*noted_in, *_tables_of(getattr(task, "inlets", None)), *reads) if t not in outs]
    inputs, outputs = datasets(ins, outs)
    forget([*noted_in, *ins, *outs], [*noted_out, *outs])  # reading the facts notes them too
    return OperatorLineage(inputs=inputs, outputs=outputs)


class LakehouseLineageMixin:
    """For the project's operators: lineage from the tables touched plus `lineage_tables()`."""

    def lineage_tables(self) -> tuple[list[str], list[str]]:
        """(tables read, tables written) the operator knows it works on, beyond what it touched."""
        return [], []

    def get_openlineage_facets_on_complete(self, task_instance) -> OperatorLineage:
        reads, writes = self.lineage_tables()
        return task_lineage(self, reads, writes)

    def get_openlineage_facets_on_failure(self, task_instance) -> OperatorLineage:
        return self.get_openlineage_facets_on_complete(task_instance)
