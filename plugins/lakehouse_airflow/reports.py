"""What a task reports about a run: the engine returns data (rows, versions, statuses), this
module turns it into the task's summary, `{"counts": {what: number}, "report_lines": [text]}`,
which tasks merge into their XCom result and `make demo` sums and prints per DAG.

Owns formatting only: never reads or writes a table, never decides anything from a result,
never imports the engine (results arrive as plain dicts).
"""

from __future__ import annotations

from typing import Any


def format_maintenance_report(rows: list[dict[str, Any]]) -> list[str]:
    """Human-readable lines: one per table, for logs and the `make demo` output."""
    lines = []
    for r in rows:
        if r.get("status") in ("skipped", "failed"):
            lines.append(f"{r['table_name']}: {r['status']} ({r.get('detail')})")
            continue
        lines.append(
            f"{r['table_name']}: files {r['files_before']} -> {r['files_after']}, "
            f"bytes {r['bytes_before']:,} -> {r['bytes_after']:,}, v{r['version_before']} -> v{r['version_after']}, "
            f"{r['seconds']}s; {r['detail']}"
        )
    return lines


def format_publish_report(results: list[dict[str, Any]]) -> list[str]:
    """One line per table: the formats published and their versions, or why not."""
    lines = []
    for r in results:
        if r.get("status") != "published":
            lines.append(f"{r['table']}: {r.get('status')} ({r.get('detail', '')})")
            continue
        parts = [f"{f['format']} v{f['to_version']} (+{f['snapshots_written']} {f['mode']}"
                 + (f", {f['reason']}" if f.get("reason") else "") + ")" for f in r["formats"]]
        lines.append(f"{r['table']}: " + "; ".join(parts))
    return lines


def summary(counts: dict[str, int] | None = None, lines: list[str] | None = None) -> dict[str, Any]:
    """The XCom keys `make demo` reads: counts summed per DAG, report lines printed under it."""
    out: dict[str, Any] = {"counts": dict(counts or {})}
    if lines is not None:
        out["report_lines"] = list(lines)
    return out


def topics_created(result: dict[str, Any]) -> dict[str, Any]:
    return summary({"Kafka topics created": len(result["created"])}, result["differs"])


def shop_published(sent: list[dict[str, Any]]) -> dict[str, Any]:
    return summary({"messages published": sum(s["messages"] for s in sent)})


def files_ingested(loaded: list[dict[str, Any]]) -> dict[str, Any]:
    return summary({
        "files loaded": sum(1 for f in loaded if f["status"] == "loaded"),
        "files quarantined whole": sum(1 for f in loaded if f["status"] == "quarantined"),
        "files waiting": sum(1 for f in loaded if f["status"] == "waiting"),
        "rows into bronze": sum(f["rows_inserted"] for f in loaded),
        "rows quarantined": sum(f["rows_quarantined"] for f in loaded)})


def bronze_checked(result: dict[str, Any]) -> dict[str, Any]:
    return summary({"bronze rows": result["bronze_rows"], "quarantined rows": result["quarantined_rows"]})


def topic_ingested(result: dict[str, Any]) -> dict[str, Any]:
    return summary({"messages into bronze": result["rows_inserted"], "messages quarantined": result["rows_quarantined"]})


def cdc_applied(result: dict[str, Any]) -> dict[str, Any]:
    return summary({} if "quarantined" not in result else {"quarantined": result["quarantined"]})


def cdc_line(result: dict[str, Any]) -> str:
    """silver/<table>: what the batch counted, or why it was skipped."""
    return f"silver/{result['table']}: {cdc_applied(result)['counts'] or result.get('detail')}"


def dimension_built(result: dict[str, Any]) -> dict[str, Any]:
    return summary({} if "late" not in result else {"late": result["late"]})


def dimension_line(result: dict[str, Any]) -> str:
    return f"gold/{result['dimension']}: {dimension_built(result)['counts'] or result.get('detail')}"


def maintenance(rows: list[dict[str, Any]]) -> dict[str, Any]:
    done = [r for r in rows if r.get("status") in ("success", "dry_run")]
    return summary({"tables maintained": len(done),
                    "files compacted away": sum(max(0, r["files_before"] - r["files_after"]) for r in done)},
                   format_maintenance_report(rows))


def published(rows: list[dict[str, Any]]) -> dict[str, Any]:
    done = [r for r in rows if r.get("status") == "published"]
    return summary({"tables published": len(done),
                    "format snapshots written": sum(f["snapshots_written"] for r in done for f in r["formats"])},
                   format_publish_report(rows))


def marts_published(results: list[dict[str, Any]]) -> dict[str, Any]:
    return summary({}, [f"{r['table'].rsplit('/', 2)[-2]}/{r['table'].rsplit('/', 1)[-1]}: "
                        f"{r['rows_inserted']} rows, v{r['version']}" for r in results])


def benchmark(result: dict[str, Any]) -> dict[str, Any]:
    lines = [f"{r['format']:8} {r['operation']:22} {r['seconds']:8.3f} s" for r in result["results"]]
    return summary({"benchmark rows": len(result["results"])},
                   [f"report: {result['report']} ({result['rows']:,} rows)", *lines])



def _evaluation_row(row: dict[str, Any]) -> str:
    auc = f"AUC {row['auc']:.3f}" if row["auc"] is not None else "one class"
    return f"{row['role']} v{row['model_version']} on {row['as_of_date']}: {auc} ({row['labels']} labels)"


def evaluation(outcome: dict[str, Any]) -> dict[str, Any]:
    """Rows written to ops/model_evaluation, champion moves, and the decision."""
    decision, rows = outcome["decision"], outcome["rows"]
    if decision["action"] == "none" and not outcome["matured_dates"] and decision["reason"] == "no champion yet":
        return summary({"evaluation rows": 0}, ["evaluation: no champion yet, nothing to evaluate"])
    return summary({"evaluation rows": len(rows), "champion moves": int(decision["action"] in ("promote", "rollback"))},
                   [f"evaluation {outcome['run_day']}: {len(rows)} row(s) on {len(outcome['matured_dates'])} matured "
                    "as-of date(s): " + (", ".join(_evaluation_row(r) for r in rows[-4:])
                                         or "none a model may be judged on"),
                    f"decision: {decision['action']} - {decision['reason']}"])


def scoring(result: dict[str, Any]) -> dict[str, Any]:
    """Customers scored, explanations and shadow scores written; the model and the top feature."""
    n, explained = result["customers_scored"], result["explanations"]
    return summary({"customers scored": n, "explanations": explained,
                    "shadow scores": result["shadow"].get("rows_scored", 0)},
                   [f"scored {n} customers for {result['as_of_date']} with {result['model_name']} "
                    f"v{result['model_version']} (features v{result['features_version']}); {explained} explanations "
                    f"(top {explained // max(n, 1)} features each, additivity error "
                    f"{result['max_additivity_error']:.1e}); top feature {next(iter(result['global_importance']))}",
                    result["shadow"]["summary"]])


def training(outcome: dict[str, Any]) -> dict[str, Any]:
    """Models trained by one train_model run (a cold start: a baseline champion and a challenger),
    their cards, and what each was registered as."""
    trained = outcome.get("trained", [outcome])
    return summary({"models trained": len(trained), "model cards": len(trained),
                    "challengers": sum(not t["new_champion"] for t in trained)},
                   [*outcome.get("notes", []),
                    *(f"{t['model_name']} v{t['model_version']} trained on {t['as_of_date']}: "
                      f"holdout AUC {t['holdout_auc']:.3f} -> {t['verdict']}" for t in trained)])


def drift(result: dict[str, Any]) -> dict[str, Any]:
    return summary({}, [f"drift check {result.get('as_of_date')}: {result['verdict']} - {result.get('detail')}"])


def _features_built(result: dict[str, Any]) -> dict[str, Any]:
    return summary({"feature rows": result["rows_inserted"]})


def _order_events_streamed(result: dict[str, Any]) -> dict[str, Any]:
    return summary({"events into windows": result["valid_events"] - result["late_events"],
                    "late events": result["late_events"], "events quarantined": result["quarantined"],
                    "windows updated": result["windows_updated"]})


def _order_changes_streamed(result: dict[str, Any]) -> dict[str, Any]:
    return summary({"order changes streamed": result["changes"], "customer totals updated": result["customers_updated"]})


SPARK_JOB_REPORTS = {"customer_features": _features_built, "stream_order_events": _order_events_streamed,
                     "stream_customer_order_stats": _order_changes_streamed}


def spark_job(job: str, result: dict[str, Any]) -> dict[str, Any]:
    """The summary of a Spark job's result, by job file name (jobs return data only); {} for a
    job without one or a backend that returns no result (Databricks)."""
    report = SPARK_JOB_REPORTS.get(job)
    return {} if report is None or result.get("backend") == "databricks" else report(result)
