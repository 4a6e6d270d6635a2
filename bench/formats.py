"""Delta vs Iceberg vs Hudi at 1M rows (median of 3)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bench.harness import ROOT, compare


def run() -> dict:
    """Delta vs Iceberg vs Hudi at 1M rows (median of 3): the multi-format week's figures, with
    ops/format_benchmark rows and the report in .local/reports/formats/ (a scratch lakehouse)."""
    from include.lakehouse.formats.benchmark import run as run_formats

    rows = int(os.environ.get("BENCH_FORMATS_ROWS", 1_000_000))
    before = os.environ.get("LAKEHOUSE_ROOT")
    with tempfile.TemporaryDirectory(prefix="bench-formats-") as root:
        os.environ["LAKEHOUSE_ROOT"] = str(Path(root) / "lakehouse")
        try:
            result = run_formats(rows, repeats=3, report_dir=ROOT / ".local" / "reports" / "formats", record=False)
        finally:
            os.environ.pop("LAKEHOUSE_ROOT", None) if before is None else os.environ.update(LAKEHOUSE_ROOT=before)
    figures = {f"{r['format']}.{r['operation']}": {"seconds": r["seconds"], "files_scanned": r["files_scanned"],
                                                   "bytes_written": r["bytes_written"]} for r in result["results"]}
    comparisons = [compare(f"{fmt} {op}", figures[f"{fmt}.{op}"]["seconds"], figures[f"delta.{op}"]["seconds"],
                           peer_name=f"Delta {op} (delta-rs)")
                   for fmt in ("iceberg", "hudi") for op in sorted({k.split(".", 1)[1] for k in figures})
                   if f"{fmt}.{op}" in figures and f"delta.{op}" in figures
                   and figures[f"{fmt}.{op}"]["seconds"] and figures[f"delta.{op}"]["seconds"]]
    return {"rows": rows, "repeats": 3, "report": result["report"], "figures": figures, "comparisons": comparisons}
