"""Run reports on the Airflow side: engine results (plain data) in, the counts `make demo` sums
and the lines it prints out."""

from __future__ import annotations

from lakehouse_airflow import reports


def test_a_cdc_batch_counts_its_quarantined_messages_and_a_skipped_one_says_why():
    applied = {"table": "customers", "changes": 5, "quarantined": 2, "rows_inserted": 3}
    skipped = {"table": "customers", "skipped": True, "detail": "bronze/shop.public.customers v4 already applied"}
    assert reports.cdc_applied(applied) == {"counts": {"quarantined": 2}}
    assert reports.cdc_line(applied) == "silver/customers: {'quarantined': 2}"
    assert reports.cdc_applied(skipped) == {"counts": {}}
    assert reports.cdc_line(skipped) == "silver/customers: bronze/shop.public.customers v4 already applied"


def test_maintenance_sums_tables_and_files_and_lists_each_table():
    rows = [{"table_name": "silver/orders", "status": "success", "files_before": 50, "files_after": 2,
             "bytes_before": 10_000, "bytes_after": 9_000, "version_before": 50, "version_after": 52,
             "seconds": 0.5, "detail": "compact -50/+2 files"},
            {"table_name": "gold/x", "status": "skipped", "detail": "table not created yet"}]
    report = reports.maintenance(rows)
    assert report["counts"] == {"tables maintained": 1, "files compacted away": 48}
    assert report["report_lines"] == [
        "silver/orders: files 50 -> 2, bytes 10,000 -> 9,000, v50 -> v52, 0.5s; compact -50/+2 files",
        "gold/x: skipped (table not created yet)"]


def test_evaluation_without_a_champion_and_with_a_decision():
    none = {"run_day": "2024-03-01", "matured_dates": [], "rows": [],
            "decision": {"action": "none", "reason": "no champion yet"}}
    assert reports.evaluation(none) == {"counts": {"evaluation rows": 0},
                                        "report_lines": ["evaluation: no champion yet, nothing to evaluate"]}
    row = {"role": "champion", "model_version": "3", "as_of_date": "2024-02-01", "auc": 0.71234, "labels": 40}
    held = {"run_day": "2024-03-01", "matured_dates": ["2024-02-01"], "rows": [row],
            "decision": {"action": "promote", "reason": "challenger better"}}
    report = reports.evaluation(held)
    assert report["counts"] == {"evaluation rows": 1, "champion moves": 1}
    assert report["report_lines"] == [
        "evaluation 2024-03-01: 1 row(s) on 1 matured as-of date(s): champion v3 on 2024-02-01: AUC 0.712 (40 labels)",
        "decision: promote - challenger better"]


def test_a_built_dimension_reports_its_late_changes_and_a_skipped_one_why():
    built = {"table": "/lake/gold/dim_customer", "dimension": "dim_customer", "late": 1, "rows_inserted": 3}
    assert reports.dimension_built(built) == {"counts": {"late": 1}}
    assert reports.dimension_line(built) == "gold/dim_customer: {'late': 1}"
    skipped = {"dimension": "dim_product", "skipped": True, "detail": "silver/products v1 already applied"}
    assert reports.dimension_line(skipped) == "gold/dim_product: silver/products v1 already applied"


def test_spark_jobs_return_data_and_the_operator_adds_their_summary():
    """One place formats a Spark job's summary (reports.spark_job, applied by SparkJobOperator):
    feature_build's "feature rows" (lost when the job went data-only), the streaming jobs' counts."""
    from lakehouse_airflow import reports

    assert reports.spark_job("customer_features", {"rows_inserted": 17071})["counts"] == {"feature rows": 17071}
    streamed = reports.spark_job("stream_order_events", {"valid_events": 10, "late_events": 2, "quarantined": 1,
                                                         "windows_updated": 4})
    assert streamed["counts"] == {"events into windows": 8, "late events": 2, "events quarantined": 1,
                                  "windows updated": 4}
    assert reports.spark_job("stream_customer_order_stats", {"changes": 5, "customers_updated": 3})["counts"] == {
        "order changes streamed": 5, "customer totals updated": 3}
    assert reports.spark_job("smoke_revenue_by_status", {"rows_inserted": 5}) == {}
    assert reports.spark_job("customer_features", {"backend": "databricks", "job": "customer_features"}) == {}
