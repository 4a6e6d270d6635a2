"""Human-readable lines for run results: the engine returns data (dicts of counts, versions,
statuses), this module turns them into the lines tasks print and `make demo` summarises.

Owns formatting only: never reads or writes a table, never decides anything from a result.
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
