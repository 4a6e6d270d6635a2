"""The demo's printed report: one line per DAG (state, seconds, key counts summed from what its
tasks returned), each DAG family's share of the demo's time, the tasks' report lines, the alerts
sent and where alerts go."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from include.lakehouse.redaction import redact_url


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def sum_results(values: list[Any]) -> tuple[dict[str, int], list[str]]:
    """What the tasks returned, summed for the summary: `rows_*` of OperationResult dicts,
    anything under a "counts" dict, and the lines of any "report_lines" list."""
    totals: dict[str, int] = {}
    lines: list[str] = []

    def add(value):
        if isinstance(value, dict):
            for key, v in value.items():
                if key.startswith("rows_") and _number(v):
                    totals[key.removeprefix("rows_")] = totals.get(key.removeprefix("rows_"), 0) + int(v)
            for key, v in (value.get("counts") or {}).items():
                if _number(v):
                    totals[key] = totals.get(key, 0) + int(v)
            lines.extend(str(line) for line in value.get("report_lines") or [])
        elif isinstance(value, list):
            for item in value:
                add(item)

    for value in values:
        add(value)
    return totals, lines


def format_counts(counts: dict[str, int]) -> str:
    """`{"rows inserted": 1200, "skipped": 0}` -> "rows inserted 1,200" (zeros left out)."""
    return ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in sorted(counts.items()) if v) or "-"


def family_shares(records: list) -> list[tuple[str, int, float, float]]:
    """Per family (a DAG's "week:<topic>" tag, else "core"): DAGs, wall seconds from its first
    run's start to its last run's end, and the sum of its DAGs' seconds. Core first."""
    families: dict[str, list] = {}
    for r in records:
        families.setdefault(r.family, []).append(r)
    rows = []
    for name in sorted(families, key=lambda f: (f != "core", f)):
        timed = [r for r in families[name] if r.started and r.ended]
        wall = (max(r.ended for r in timed) - min(r.started for r in timed)).total_seconds() if timed else 0.0
        rows.append((name, len(families[name]), wall, sum(r.seconds for r in timed)))
    return rows


def read_alerts(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def print_summary(records: list, alerts_before: int, alerts_file: Path, wall: float | None = None,
                  phases: dict[str, float] | None = None, startup: float | None = None) -> None:
    width = max([len(r.dag_id) for r in records] + [3])
    print()
    print(f"{'DAG':<{width}}  {'state':<8}  {'seconds':>7}  key counts")
    print(f"{'-' * width}  {'-' * 8}  {'-' * 7}  {'-' * 40}")
    for r in records:
        seconds = f"{r.seconds:.1f}" if r.seconds is not None else "-"
        print(f"{r.dag_id:<{width}}  {r.state:<8}  {seconds:>7}  {format_counts(r.counts)}"
              f"{'  (' + r.note + ')' if r.note else ''}")
    if records:
        print("\nshare of the demo by DAG family (tag week:<topic>; untagged: core):")
        for name, count, family_wall, task_seconds in family_shares(records):
            print(f"  {name:<12} {count:>2} DAGs  {family_wall:7.1f} s wall  {task_seconds:7.1f} s summed over its DAGs")
        if phases:
            from scripts.local_airflow.graph import MAIN_PHASES

            print("phases, one after another (the loop and its ops, then each later week, then the later weeks' ops):")
            for name, seconds in phases.items():
                print(f"  {name:<24} {seconds:7.1f} s wall")
            main = [phases[name] for name in MAIN_PHASES if name in phases]
            if main and len(main) < len(phases):
                print(f"  the loop and its ops: {sum(main):.1f} s wall; the later weeks: "
                      f"{sum(phases.values()) - sum(main):.1f} s wall")
            if main and startup is not None:
                print(f"  start-up (broker, Spark Connect, metadata DB, Airflow's components): {startup:.1f} s; "
                      f"start-up + the loop and its ops: {startup + sum(main):.1f} s wall")
        if wall is not None:
            print(f"  whole demo after start-up checks: {wall:.1f} s wall")
    for r in records:
        if r.report_lines:
            print(f"\n{r.dag_id} report:")
            for line in r.report_lines:
                print(f"  {line}")
    sent = read_alerts(alerts_file)[alerts_before:]
    if sent:
        print("\nalerts sent during the demo:")
        for a in sent:
            print(f"  {a.get('kind')} [{a.get('severity')}] -> {', '.join(a.get('channels') or ['outbox'])}: "
                  f"{str(a.get('summary'))[:110]}")
    print("\nwhere alerts go (plugins/lakehouse_airflow/alerting.yaml): outbox " + str(alerts_file) + "; " + "; ".join(
        f"{name} {'-> ' + redact_url(os.environ[var]) if os.environ.get(var) else 'not configured (' + var + ')'}"
        for name, var in (("webhook", "LAKEHOUSE_ALERT_WEBHOOK_URL"), ("slack", "LAKEHOUSE_SLACK_CONN_ID"),
                          ("email", "LAKEHOUSE_ALERT_EMAIL_TO"))) + "; self-test: make canary")
    ok = sum(r.state == "success" for r in records)
    print(f"\n{ok}/{len(records)} DAGs succeeded; alerts sent during the demo: {len(sent)} ({alerts_file})")
