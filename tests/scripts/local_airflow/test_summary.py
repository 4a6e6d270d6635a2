"""The demo's printed report: counts summed from what tasks returned, each family's share."""

from __future__ import annotations

from datetime import datetime, timedelta

from scripts.local_airflow.runner import RunRecord
from scripts.local_airflow.summary import family_shares, format_counts, print_summary, sum_results


def test_counts_are_summed_from_operation_results_counts_and_report_lines():
    counts, lines = sum_results([
        {"table": "bronze/orders", "rows_inserted": 300, "rows_updated": 0},
        [{"rows_inserted": 8}, {"counts": {"files loaded": 1}, "report_lines": ["GX bronze_orders: passed"]}],
        "not a result", {"rows_inserted": True},
    ])
    assert counts == {"inserted": 308, "updated": 0, "files loaded": 1} and lines == ["GX bronze_orders: passed"]
    assert format_counts(counts) == "files loaded 1, inserted 308"
    assert format_counts({}) == "-"


def test_each_family_reports_its_own_share(tmp_path, capsys):
    t0 = datetime(2026, 1, 1)

    def record(dag_id, family, start, end):
        return RunRecord(dag_id, family=family, state="success", started=t0 + timedelta(seconds=start),
                         ended=t0 + timedelta(seconds=end))

    records = [record("shop_source", "core", 0, 10), record("cdc_apply", "core", 5, 30),
               record("stream_orders", "streaming", 20, 50)]
    assert family_shares(records) == [("core", 2, 30.0, 35.0), ("streaming", 1, 30.0, 30.0)]
    print_summary(records, 0, tmp_path / "alerts.jsonl", wall=62.0, phases={
        "lakehouse and ML loop": 31.0, "ops": 7.0, "week: streaming": 24.0}, startup=20.5)
    out = capsys.readouterr().out
    assert "start-up + the loop and its ops: 58.5 s wall" in out
    assert "lakehouse and ML loop       31.0 s wall" in out and "week: streaming             24.0 s wall" in out
    assert "the loop and its ops: 38.0 s wall; the later weeks: 24.0 s wall" in out
    assert "core          2 DAGs     30.0 s wall" in out and "streaming     1 DAGs     30.0 s wall" in out
    assert "3/3 DAGs succeeded" in out
