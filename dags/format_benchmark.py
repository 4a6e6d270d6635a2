"""
### format_benchmark

Delta vs Iceberg vs Hudi on the same generated orders (1M rows unless `rows` says otherwise, or
`LAKEHOUSE_FORMAT_BENCH_ROWS` sets the default; the demo runs it small): write, full read,
selective read on the sorted column with the files each format scans, upsert/merge, delete,
small-file compaction, time travel and storage. Rows go to `ops/format_benchmark`; the report
(markdown, PNG charts, cost model, which format when for ML workloads) to
`.local/reports/formats/format_benchmark.md`. On demand only.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from lakehouse_airflow.assets import table_asset
from lakehouse_airflow.defaults import dag_args


@dag(**dag_args("format_benchmark", doc_md=__doc__, schedule=None, tags=["ops", "formats", "benchmark", "week:formats"],
                params={"rows": Param(None, type=["null", "integer"], minimum=1000,
                                      description="rows to generate (default: LAKEHOUSE_FORMAT_BENCH_ROWS or 1,000,000)"),
                        "repeats": Param(1, type="integer", minimum=1, maximum=5,
                                         description="runs per operation; the report shows medians")}))
def format_benchmark():
    @task(outlets=[table_asset("ops/format_benchmark")], retries=2)
    def benchmark_formats(params=None, dag_run=None):
        from include.lakehouse.formats.benchmark import run

        from lakehouse_airflow.reports import benchmark

        result = run(params.get("rows"), repeats=int(params.get("repeats") or 1), run_id=dag_run.run_id)
        report = benchmark(result)
        for line in report["report_lines"][1:]:
            print(line)
        return report

    benchmark_formats()


format_benchmark()
