"""DataQualityOperator: validates a Delta table version with its Great Expectations suite
(include/expectations/<suite>.yml, run by include/lakehouse/quality/expectations.py).

The suite's `on_failure` decides: `fail` fails the task at once (no retries: the data will not
change by retrying) and so blocks what comes after it; `warn` and `quarantine` succeed and
alert on-call once with the summary. The result (counts, failed expectations, data docs
path) is the task's XCom. Put the operator between a write and the task that announces the
table's Asset, so bad data is never announced downstream.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

from lakehouse_airflow.alerts import send_alert, task_fields
from lakehouse_airflow.lineage import LakehouseLineageMixin
from lakehouse_airflow.ui.links import DataDocsLink


def has_suite(suite: str) -> bool:
    """A suite file include/expectations/<suite>.yml exists (cheap: DAG files ask at parse time
    which of their tables have a suite, instead of listing them)."""
    from include.lakehouse.config import PROJECT_ROOT

    return (PROJECT_ROOT / "include" / "expectations" / f"{suite}.yml").is_file()


class DataQualityOperator(LakehouseLineageMixin, BaseOperator):
    template_fields = ("version",)
    ui_color = "#e6f3ff"
    operator_extra_links = (DataDocsLink(),)

    def __init__(self, *, suite: str, version: int | str | None = None, **kwargs: Any):
        kwargs.setdefault("pool", "data_quality")  # GX keeps one file store: one validation at a time
        super().__init__(**kwargs)
        self.suite = suite
        self.version = version

    def execute(self, context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from include.lakehouse.observability.health import record_quality
        from include.lakehouse.quality.expectations import DataQualityError, validate

        version = int(self.version) if self.version not in (None, "", "None") else None
        try:
            result = validate(self.suite, version=version)
        except DataQualityError as exc:
            self.log.error("%s\nfailed expectations: %s\ndata docs: %s", exc, exc.result["failed"], exc.result["docs"])
            record_quality(exc.result, self.suite)  # the health page shows the failed validation
            raise AirflowFailException(str(exc)) from exc
        self.log.info("suite %s on %s v%s: %s (%d expectations, %d rows); data docs: %s", self.suite,
                      result["table"], result["version"], result["action"], result["evaluated"], result["rows"],
                      result["docs"])
        record_quality(result, self.suite)
        if result["action"] != "passed":
            send_alert({"kind": "data_quality", "severity": "warning", **task_fields(context),
                        "summary": result["summary"], "suite": self.suite, "action": result["action"],
                        "dedup_key": f"dq/{self.suite}/{result['table']}/v{result['version']}"})
        return {**result, "counts": {"rows validated": result["rows"],
                                     "rows quarantined by GX": result.get("rows_quarantined", 0)},
                "report_lines": [f"GX {self.suite}: {result['action']} ({result['evaluated']} expectations, "
                                 f"{result['rows']} rows, {result['table']} v{result['version']})"]}
