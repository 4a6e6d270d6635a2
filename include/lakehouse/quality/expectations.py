"""Data quality with Great Expectations (GX Core): one suite per table under
include/expectations/<suite>.yml, validated against a Delta table version.

A suite file names its table, optional `partition: latest` (the newest value of the table's
partition column), `row_count` bounds, `freshness` (newest value of a timestamp column no
older than N hours), `references` (values that must exist in another table's column) and
plain GX expectations by their snake_case names. `on_failure` decides what a failing suite
does: `fail` (raise: the task fails, nothing downstream is announced), `warn` (report and go
on) or `quarantine` (copy the failing rows, with the reasons, to quarantine/dq.<table> and go
on; a table-level failure such as row count or freshness still fails). Results and a data
docs site are kept under the local state folder (`.local/gx/`).
Never changes the validated table (quarantine rows are copies) and never alerts (the operator does).
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import yaml

from include.lakehouse.config import local_dir
from include.lakehouse.errors import LakehouseError
from include.lakehouse.tables.delta import append, open_table
from include.lakehouse.tables.registry import resolve, table_ref

SUITES_DIR = Path(__file__).resolve().parents[2] / "expectations"
ACTIONS = ("fail", "warn", "quarantine")


class DataQualityError(LakehouseError):
    """A suite with on_failure: fail (or a table-level failure) did not pass."""

    def __init__(self, message: str, result: dict[str, Any]):
        super().__init__(message)
        self.result = result


def suites() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.yml"))


def load_suite(name: str) -> dict[str, Any]:
    path = SUITES_DIR / f"{name}.yml"
    if not path.exists():
        raise LakehouseError(f"no expectation suite '{name}' in {SUITES_DIR}; suites: {suites()}")
    spec = yaml.safe_load(path.read_text()) or {}
    if spec.get("on_failure", "fail") not in ACTIONS:
        raise LakehouseError(f"suite {name}: on_failure must be one of {ACTIONS}, not {spec.get('on_failure')!r}")
    if "table" not in spec:
        raise LakehouseError(f"suite {name}: 'table' (a registry name such as silver/orders) is missing")
    return {"name": name, "on_failure": "fail", "expectations": [], **spec}


def gx_root() -> Path:
    return local_dir("gx")


def _expectations(spec: dict[str, Any]) -> list[Any]:
    import great_expectations as gx

    built = []
    for item in spec["expectations"]:
        (kind, kwargs), = item.items()
        cls = getattr(gx.expectations, "".join(part.title() for part in kind.split("_")), None)
        if cls is None:
            raise LakehouseError(f"suite {spec['name']}: unknown expectation '{kind}'")
        built.append(cls(**(kwargs or {})))
    if spec.get("row_count"):
        built.append(gx.expectations.ExpectTableRowCountToBeBetween(
            min_value=spec["row_count"].get("min"), max_value=spec["row_count"].get("max")))
    if spec.get("freshness"):
        fresh = spec["freshness"]
        oldest = datetime.now(timezone.utc) - timedelta(hours=float(fresh["max_age_hours"]))
        built.append(gx.expectations.ExpectColumnMaxToBeBetween(column=fresh["column"], min_value=oldest,
                                                                meta={"check": "freshness"}))
    for ref in spec.get("references") or []:
        built.append(gx.expectations.ExpectColumnValuesToBeInSet(
            column=_reference_column(ref), value_set=[True], mostly=ref.get("mostly", 1.0),
            meta={"check": f"references {ref['table']}.{ref['to_column']}", "column": ref["column"]}))
    return built


def _reference_column(ref: dict[str, Any]) -> str:
    return f"_{ref['column']}_in_{ref['table'].replace('/', '_')}_{ref['to_column']}"


def _with_references(frame: pd.DataFrame, spec: dict[str, Any]) -> pd.DataFrame:
    """The frame plus, per reference, a column saying whether the row's value exists in the
    other table (null where the value is null: GX's in-set rule does not count nulls).

    Checked here, vectorised (Arrow's is_in), instead of by an in-set expectation whose value set
    is every key of the other table: GX re-serialises an expectation's arguments hundreds of times
    per run, which made a reference to 11k customers 7 of silver_orders' 8 seconds. The expectation
    on the added column keeps the reference's name, `mostly` and failing rows."""
    for ref in spec.get("references") or []:
        keys = open_table(ref["table"]).to_pyarrow_table(columns=[ref["to_column"]]).column(0).drop_null()
        values = pa.array(frame[ref["column"]], from_pandas=True)
        if values.type != keys.type:
            keys = keys.cast(values.type)
        found = pa.compute.is_in(values, value_set=keys.unique())
        frame[_reference_column(ref)] = pa.compute.if_else(values.is_null(), None, found).to_pandas()
    return frame


def _read(spec: dict[str, Any], version: int | None) -> tuple[pd.DataFrame, int, str | None]:
    dt = open_table(spec["table"], version=version)
    partition = None
    filters = None
    if spec.get("partition") == "latest":
        column = dt.metadata().partition_columns[0]
        values = dt.to_pyarrow_table(columns=[column]).column(0)
        newest = pa.compute.max(values).as_py()
        partition, filters = f"{column}={newest}", [(column, "=", newest)]
    frame = dt.to_pyarrow_table(filters=filters).to_pandas()
    return frame, dt.version(), partition


def validate(suite: str, *, version: int | None = None, frame: pd.DataFrame | None = None) -> dict[str, Any]:
    """Validate a suite's table (at `version`, default current; or a given frame) and act on it."""
    import great_expectations as gx

    started = time.perf_counter()
    spec = load_suite(suite)
    partition = None
    if frame is None:
        frame, version, partition = _read(spec, version)
    frame = frame.reset_index(drop=True)
    own_columns = list(frame.columns)  # the table's: quarantine copies these, not the reference checks'
    frame = _with_references(frame, spec)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    context = gx.get_context(mode="file", project_root_dir=str(gx_root()))
    source = context.data_sources.add_or_update_pandas("lakehouse")
    asset_name = spec["table"].replace("/", ".")  # GX store keys may not contain '/'
    asset = next((a for a in source.assets if a.name == asset_name), None) or source.add_dataframe_asset(asset_name)
    batch = next((b for b in asset.batch_definitions if b.name == "whole"), None) or \
        asset.add_batch_definition_whole_dataframe("whole")
    gx_suite = context.suites.add_or_update(gx.ExpectationSuite(name=suite, expectations=_expectations(spec)))
    definition = context.validation_definitions.add_or_update(gx.ValidationDefinition(name=suite, data=batch, suite=gx_suite))
    checkpoint = context.checkpoints.add_or_update(gx.Checkpoint(
        name=suite, validation_definitions=[definition], result_format={"result_format": "COMPLETE"},
        actions=[gx.checkpoint.UpdateDataDocsAction(name="update_data_docs")]))
    outcome = checkpoint.run(batch_parameters={"dataframe": frame})
    validation = next(iter(outcome.run_results.values()))
    failed, bad_rows, table_level = [], {}, []
    for r in validation.results:
        if r.success:
            continue
        config = r.expectation_config
        what = (config.meta or {}).get("check") or config.type
        column = (config.meta or {}).get("column") or config.kwargs.get("column") or config.kwargs.get("column_list") \
            or config.kwargs.get("column_A")
        failed.append({"expectation": what, "column": column, "unexpected_count": r.result.get("unexpected_count"),
                       "observed_value": str(r.result.get("observed_value"))[:200] if "observed_value" in r.result else None})
        indexes = r.result.get("unexpected_index_list")
        if indexes is None:
            table_level.append(what)
        for i in indexes or []:
            index = i.get("index", i) if isinstance(i, dict) else i
            bad_rows.setdefault(int(index), []).append(f"{what}({column})")
    docs = context.get_docs_sites_urls()
    result = {"suite": suite, "table": spec["table"], "version": version, "partition": partition,
              "success": bool(validation.success), "rows": len(frame),
              "evaluated": len(validation.results), "failed": failed, "on_failure": spec["on_failure"],
              "docs": docs[0]["site_url"] if docs else None, "seconds": round(time.perf_counter() - started, 3),
              "action": "passed"}
    if result["success"]:
        return result
    summary = (f"suite {suite} on {spec['table']} v{version}{' ' + partition if partition else ''}: "
               f"{len(failed)}/{len(validation.results)} expectations failed: "
               + "; ".join(f"{f['expectation']}({f['column']}) x{f['unexpected_count']}" for f in failed))
    result["summary"] = summary
    if spec["on_failure"] == "warn":
        return {**result, "action": "warned"}
    if spec["on_failure"] == "quarantine" and not table_level:
        rows = frame.iloc[sorted(bad_rows)][own_columns].copy()
        rows["_dq_reason"] = ["; ".join(bad_rows[i]) for i in sorted(bad_rows)]
        rows["_dq_suite"] = suite
        rows["_table_version"] = version
        target = table_ref(f"quarantine/dq.{spec['table'].replace('/', '.')}")
        data = pa.Table.from_pandas(rows, preserve_index=False)
        if version is None:  # a frame, not a table version: nothing to make the append idempotent by
            append(target, data)
        else:
            append(target, data, app_id=f"dq.{suite}", app_version=int(version))
        return {**result, "action": "quarantined", "rows_quarantined": len(rows), "quarantine_table": resolve(target)[0]}
    raise DataQualityError(summary, result)


def table_version(suite: str) -> int:
    """Current version of a suite's table (what a task validates when given no version)."""
    return open_table(load_suite(suite)["table"]).version()


__all__ = ["DataQualityError", "load_suite", "suites", "table_version", "validate"]
