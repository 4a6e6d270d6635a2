"""The OpenLineage extractor of `@task` functions, registered by `[openlineage] extractors =
lakehouse_airflow.lineage_extractor.LakehouseExtractor` (scripts/localenv.py, the Dockerfile).
Apart from lineage.py because it subclasses the provider's BaseExtractor: DAG files import
lineage.py (through the operators) and must not pay for the provider at every parse."""

from __future__ import annotations

from airflow.providers.openlineage.extractors.base import BaseExtractor, OperatorLineage

from lakehouse_airflow.lineage import task_lineage


class LakehouseExtractor(BaseExtractor):
    """Lineage of `@task` functions (and PythonOperator-like tasks) from the tables they touched."""

    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return ["_PythonDecoratedOperator", "_BranchPythonDecoratedOperator", "_ShortCircuitDecoratedOperator"]

    def _execute_extraction(self) -> OperatorLineage | None:
        return OperatorLineage()  # START: nothing touched yet

    def extract_on_complete(self, task_instance) -> OperatorLineage | None:
        return task_lineage(self.operator)

    def extract_on_failure(self, task_instance) -> OperatorLineage | None:
        return task_lineage(self.operator)
