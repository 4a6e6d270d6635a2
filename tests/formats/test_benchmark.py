"""The format benchmark on a few thousand rows: every operation measured for every format,
the formats end with the same rows, rows land in ops/format_benchmark, the report and its
charts are written."""

from __future__ import annotations

from include.lakehouse.formats import benchmark, query


def test_benchmark_rows_report_and_charts(lakehouse_root, tmp_path):
    result = benchmark.run(3000, report_dir=tmp_path / "report")
    done = {(r["format"], r["operation"]) for r in result["results"]}
    for fmt in ("delta", "iceberg", "hudi"):
        for op in ("write", "full_read", "selective_read", "upsert", "delete", "compaction", "time_travel", "storage"):
            assert (fmt, op) in done
    assert len({r["rows_after"] for r in result["results"]}) == 1  # the same logical end state everywhere
    selective = {r["format"]: r for r in result["results"] if r["operation"] == "selective_read"}
    assert all(r["files_scanned"] < r["files_total"] for r in selective.values())  # data skipping works
    stored = query.read("ops/format_benchmark", sql="SELECT count(*) AS n FROM t").column("n")[0].as_py()
    assert stored == len(result["results"])
    report = (tmp_path / "report" / "format_benchmark.md").read_text()
    assert "Which format when" in report and "Cost model" in report
    assert all((tmp_path / "report" / png).stat().st_size > 1000
               for png in ("seconds.png", "files_scanned.png", "bytes_written.png"))
