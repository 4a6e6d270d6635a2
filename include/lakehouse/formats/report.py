"""The format benchmark's report: markdown with PNG charts under `.local/reports/formats/`,
the measured table, a cost model and 'which format when' for ML workloads.

Owns presentation only: never measures, never writes a table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

FORMATS = ("delta", "iceberg", "hudi")
OPERATIONS = ("write", "full_read", "selective_read", "upsert", "delete", "compaction", "time_travel")


def report_dir() -> Path:
    from include.lakehouse.config import local_dir

    return local_dir("reports") / "formats"


def _get(results, fmt, op, key="seconds"):
    for r in results:
        if r["format"] == fmt and r["operation"] == op:
            return r.get(key)
    return None


def _charts(results: list[dict[str, Any]], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    for key, title, ops, fname in (
        ("seconds", "Seconds per operation (median)", OPERATIONS, "seconds.png"),
        ("files_scanned", "Files scanned (selective read vs full read)", ("full_read", "selective_read"), "files_scanned.png"),
        ("bytes_written", "Bytes written per operation", ("write", "upsert", "delete", "compaction"), "bytes_written.png"),
    ):
        fig, ax = plt.subplots(figsize=(9, 4))
        width = 0.27
        for i, fmt in enumerate(FORMATS):
            values = [float(_get(results, fmt, op, key) or 0) for op in ops]
            ax.bar([x + (i - 1) * width for x in range(len(ops))], values, width, label=fmt)
        ax.set_xticks(range(len(ops)), ops, rotation=15)
        ax.set_title(title)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / fname, dpi=90)
        plt.close(fig)
        names.append(fname)
    return names


def write_report(results: list[dict[str, Any]], *, rows: int, repeats: int, out_dir: Path | None = None) -> Path:
    out = Path(out_dir or report_dir())
    out.mkdir(parents=True, exist_ok=True)
    charts = _charts(results, out)
    s = lambda fmt, op: _get(results, fmt, op)  # noqa: E731

    def ratio(a, b):
        return f"{a / b:.1f}x" if a and b else "n/a"
    lines = [f"# Delta vs Iceberg vs Hudi: {rows:,} rows, median of {repeats}", "",
             "Same generated orders (sorted by customer_id, written as 10 commits) in each format. "
             "Delta through delta-rs, Iceberg through pyiceberg (SQL catalog), Hudi by translation of "
             "the Delta log (hudi-rs reads; there is no Hudi writer on PyPI).", ""]
    lines += [f"![{c}]({c})" for c in charts] + [""]
    lines += ["| format | operation | seconds | bytes written | bytes read | files scanned | files total | rows after | cost USD | note |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in sorted(results, key=lambda r: (r["operation"], r["format"])):
        lines.append(f"| {r['format']} | {r['operation']} | {r['seconds']:.3f} | {r['bytes_written']:,} | {r['bytes_read']:,} "
                     f"| {'' if r['files_scanned'] is None else r['files_scanned']} "
                     f"| {'' if r['files_total'] is None else r['files_total']} | {r.get('rows_after', '')} "
                     f"| {r.get('cost_usd', 0):.8f} | {r['note']} |")

    lines += ["", "## Against the figures measured when the week was planned (1M rows, idle machine)", "",
              f"Planned: Delta merge of 100k 0.35 s, Iceberg upsert 5.0 s (14x), delete + append 1.96 s (5.6x); "
              f"write 0.19 / 0.22 s and read 0.07 / 0.09 s for one 1M-row file; add_files 0.017 s for one snapshot. "
              f"Here: Delta merge {s('delta', 'upsert') or 0:.2f} s, Iceberg upsert {s('iceberg', 'upsert') or 0:.2f} s "
              f"({ratio(s('iceberg', 'upsert'), s('delta', 'upsert'))}), delete + append "
              f"{s('iceberg', 'upsert_delete_append') or 0:.2f} s "
              f"({ratio(s('iceberg', 'upsert_delete_append'), s('delta', 'upsert'))}). The ratios are what carries "
              "over: absolute seconds depend on how busy the 2 shared cores are, the writes here are 10 commits "
              "(10 files, for data skipping) rather than one, delete + append deletes by an IN list of all the "
              "batch's keys (half of them not in the table) on a one-file table, and translate_from_delta replays every Delta "
              "version as its own snapshot (one add_files each) instead of one add_files of the last snapshot.",
              ""]
    lines += ["", "## Cost model", "",
              "Object storage list prices: $0.023 per GB-month stored, $0.005 per 1,000 PUTs (one per file "
              "written, files up to 128 MB), $0.0004 per 1,000 GETs (one per file scanned). Compute is the "
              "seconds column. What dominates: bytes rewritten by upserts, deletes and compaction (copy-on-write "
              "rewrites whole files in all three formats here) and files scanned by reads; data skipping on "
              "the sorted column cuts the GETs and bytes of a selective read to the files whose min/max "
              "statistics hold the key. Zero-copy publishing (Iceberg add_files, Hudi hardlinks) adds "
              "metadata only: no bytes stored twice.", "",
              "## Which format when (ML workloads)", "",
              f"- **Feature tables** (daily upserts by entity key, point-in-time reads): Delta. Its merge was "
              f"{ratio(s('iceberg', 'upsert'), s('delta', 'upsert'))} faster than pyiceberg's upsert "
              f"({ratio(s('iceberg', 'upsert_delete_append'), s('delta', 'upsert'))} against delete + append "
              "in one Iceberg transaction), and change data feed + z-order/compaction are built in here.",
              "- **Training snapshots** (read a whole table as of a version, reproducibly): any of the three "
              "reads a pinned version; publish Delta's version as an Iceberg snapshot (zero copy) when the "
              "training platform speaks Iceberg (Trino, Snowflake, BigQuery, Athena) and keep the Delta "
              "version in the model's metadata. Snapshot retention must outlive the model: vacuum is "
              "refused while an Iceberg snapshot still references a file.",
              "- **Inference outputs** (append-mostly, partitioned by date, consumed by other engines): "
              "Iceberg for a multi-engine catalog (hidden partitioning, REST catalog); Delta when consumers "
              "are Spark/Databricks/DuckDB. Hudi pays off with record-level upserts and merge-on-read from a "
              "Spark + Hudi writer (streaming ingestion with frequent small updates); here it is read-only.",
              "", "## Hudi here", "",
              "hudi-rs (`hudi` 0.5.0) only reads. Hudi tables are built from the Delta log: hardlinked base "
              "files and one instant per Delta version (`replacecommit` for removed files). A Spark + Hudi "
              "bundle jar (not reachable: no Maven) would add native upserts/deletes with record indexes, "
              "merge-on-read tables with log files, compaction, clustering, the cleaner and the metadata "
              "table; its rows for upsert/delete/compaction would then be real Hudi writes instead of translations.",
              ""]
    path = out / "format_benchmark.md"
    path.write_text("\n".join(lines))
    return path
