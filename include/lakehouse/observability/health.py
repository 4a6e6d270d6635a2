"""One observation of every registered table: freshness (last commit vs its SLA), volume (rows
and bytes added per day vs the trailing history), schema changes (vs the schema seen last time),
written to `ops/table_health`, `ops/table_volume` and `ops/schema_changes`; alerts for a stale
table or a volume anomaly, each raised once per table and day (`ops/observability_alerts`
remembers what was raised). Also records data quality results (`ops/quality_results`) for the page.

Volume comes from the Delta log through the table layer (`tables.delta.commit_log`): rows from
the commits' operation metrics, bytes from the files they added with dataChange=true (so
compaction, z-order and vacuum add neither). `ops/table_volume` keeps the days (past log
cleanup) and, per day, the newest version counted, so each observation reads only newer commits.

Everything is looked up by registered table name; nothing reads files by path.
"""

from __future__ import annotations

import json
import statistics
from datetime import datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from include.lakehouse.observability.config import load_config
from include.lakehouse.tables.delta import append, commit_log, merge_upsert, try_open
from include.lakehouse.tables.registry import registered_tables

HEALTH = "ops/table_health"
VOLUME = "ops/table_volume"
SCHEMA_CHANGES = "ops/schema_changes"
QUALITY = "ops/quality_results"
ALERTS = "ops/observability_alerts"
DRIFT = "ops/drift_log"
DAG_HEALTH = "ops/dag_health"  # written by runs.summarise

# operationMetrics that count inserted rows: delta-rs writes/merges, Spark writes/merges (a commit that
# records tables.delta.ROWS_ADDED itself, e.g. an SCD2 batch writing back unchanged rows, is counted by that)
ROWS_ADDED_KEYS = ("num_added_rows", "num_target_rows_inserted", "numOutputRows", "numTargetRowsInserted")

HEALTH_SCHEMA = pa.schema([
    ("observed_at", pa.timestamp("us", tz="UTC")), ("day", pa.string()), ("table_name", pa.string()),
    ("version", pa.int64()), ("last_commit_at", pa.timestamp("us", tz="UTC")), ("age_hours", pa.float64()),
    ("sla_hours", pa.float64()), ("freshness", pa.string()), ("rows_total", pa.int64()),
    ("bytes_total", pa.int64()), ("rows_added_day", pa.int64()), ("volume_median", pa.float64()),
    ("volume", pa.string()), ("schema_json", pa.string()), ("schema_changed", pa.bool_()),
    ("bytes_added_day", pa.int64()), ("bytes_median", pa.float64()), ("volume_measures", pa.string()),
])
# bytes_added is null for days recorded before bytes were measured; last_version is the newest
# commit counted into the day (null for such days too)
VOLUME_SCHEMA = pa.schema([("table_name", pa.string()), ("day", pa.string()), ("rows_added", pa.int64()),
                           ("commits", pa.int64()), ("bytes_added", pa.int64()), ("last_version", pa.int64())])
SCHEMA_CHANGE_SCHEMA = pa.schema([
    ("observed_at", pa.timestamp("us", tz="UTC")), ("table_name", pa.string()), ("version", pa.int64()),
    ("added", pa.string()), ("removed", pa.string()), ("changed", pa.string()),
])
QUALITY_SCHEMA = pa.schema([
    ("validated_at", pa.timestamp("us", tz="UTC")), ("suite", pa.string()), ("table_name", pa.string()),
    ("version", pa.int64()), ("action", pa.string()), ("evaluated", pa.int64()), ("failed", pa.int64()),
    ("rows", pa.int64()), ("docs_url", pa.string()),
])
ALERT_SCHEMA = pa.schema([("raised_at", pa.timestamp("us", tz="UTC")), ("dedup_key", pa.string()),
                          ("kind", pa.string()), ("table_name", pa.string()), ("summary", pa.string())])


def read_ops(name: str) -> list[dict[str, Any]]:
    """Rows of an ops/ table (empty when it does not exist yet)."""
    dt = try_open(name)
    if dt is None:
        return []
    return dt.to_pyarrow_dataset().to_table().to_pylist()


def latest_by(rows: list[dict[str, Any]], key: str, order: str) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: r[order]):
        latest[row[key]] = row
    return latest


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def rows_added(commit: dict[str, Any]) -> int:
    """Rows a commit (a `tables.delta.commit_log` row) inserted: the count it recorded itself when
    it did (an SCD2 batch, whose metrics also count the rows it wrote back unchanged), else from
    its operationMetrics (0 for rewrites such as OPTIMIZE)."""
    if commit.get("rows_added_recorded") is not None:
        return int(commit["rows_added_recorded"])
    metrics = commit.get("operation_metrics") or {}
    return sum(int(metrics.get(k) or 0) for k in ROWS_ADDED_KEYS)


def daily_volume(commits: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Rows and bytes added, commits and the newest version per UTC day, of `tables.delta.commit_log` rows."""
    days: dict[str, dict[str, int]] = {}
    for commit in commits:
        day = _utc(commit["timestamp"]).date().isoformat()
        entry = days.setdefault(day, {"rows_added": 0, "bytes_added": 0, "commits": 0, "last_version": -1})
        entry["rows_added"] += rows_added(commit)
        entry["bytes_added"] += int(commit["bytes_added"])
        entry["commits"] += 1
        entry["last_version"] = max(entry["last_version"], commit["version"])
    return days


def volume_since(dt, stored: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The days of `dt` whose volume changed since the stored days (`ops/table_volume` rows of
    the table by day) were counted, as the rows to store, and the table's newest commit.

    Reads only the commits after the newest version stored (all the log keeps when none is, e.g.
    days stored before bytes were measured, or the table was created anew): their days are
    added to what was stored. Days the log no longer holds stay as stored, and so does a day
    whose first commits the log cleanup removed."""
    counted = max((r.get("last_version") for r in stored.values() if r.get("last_version") is not None), default=None)
    if counted is not None and counted > dt.version():
        counted = None  # a table created anew at the same place: its versions start again
    after = -1 if counted is None else counted
    commits = commit_log(dt, min(after, dt.version() - 1))  # at least the newest: its time is the table's last commit
    newest = commits[0] if commits else {"version": dt.version(), "timestamp": None}
    fresh = [c for c in commits if c["version"] > after]
    days = daily_volume(fresh)
    if counted is None and fresh and fresh[-1]["version"] > 0:  # the log starts after a cleanup
        first = _utc(fresh[-1]["timestamp"]).date().isoformat()
        if first in stored:
            days.pop(first)  # partly gone from the log: what was stored counted more of it
    if counted is not None:
        for day, entry in days.items():
            before = stored.get(day) or {}
            entry["rows_added"] += int(before.get("rows_added") or 0)
            entry["bytes_added"] += int(before.get("bytes_added") or 0)
            entry["commits"] += int(before.get("commits") or 0)
    return days, newest


def schema_of(dt) -> dict[str, str]:
    return {f["name"]: json.dumps(f["type"], sort_keys=True) if not isinstance(f["type"], str) else f["type"]
            for f in json.loads(dt.schema().to_json())["fields"]}


def volume_verdict(today: int | None, trailing: list[int], min_days: int, factor: float) -> tuple[str, float | None]:
    """`anomaly` when today's measure (rows or bytes added) is outside [median / factor,
    median * factor] of the trailing days that had data; `no_history` below min_days of history;
    `no_data` when nothing was added today (freshness covers that)."""
    if not trailing or len(trailing) < min_days:
        return "no_history", (statistics.median(trailing) if trailing else None)
    median = float(statistics.median(trailing))
    if today is None:
        return "no_data", median
    if today > median * factor or today < median / factor:
        return "anomaly", median
    return "ok", median


VERDICT_RANK = ("anomaly", "ok", "no_data", "no_history")  # the table's verdict: the first any measure has


def human_bytes(n: float | None) -> str:
    """Bytes for people (decimal units): 52.7 kB; `-` for none."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def observe(now: datetime | None = None, tables: list[str] | None = None) -> dict[str, Any]:
    """Observe every registered table (or `tables`) as of `now`; record and return the result,
    with `alerts`: the alerts not raised before for the same table, kind and day."""
    cfg = load_config()
    now = now or datetime.now(timezone.utc)
    day = now.date().isoformat()
    window = [(now.date() - timedelta(days=i)).isoformat() for i in range(1, cfg.volume.trailing_days + 1)]
    names = sorted(tables) if tables is not None else [n for n in registered_tables()]
    previous = latest_by(read_ops(HEALTH), "table_name", "observed_at")
    stored_volume: dict[str, dict[str, dict[str, Any]]] = {}
    for row in read_ops(VOLUME):
        stored_volume.setdefault(row["table_name"], {})[row["day"]] = row
    raised = {row["dedup_key"] for row in read_ops(ALERTS)}

    health, volume_rows, changes, alerts = [], [], [], []
    for name in names:
        if name in (HEALTH, VOLUME, ALERTS, SCHEMA_CHANGES, DAG_HEALTH):
            continue  # this job's own records
        dt = try_open(name)
        sla = cfg.freshness.sla_hours(name)
        if dt is None:
            health.append({"observed_at": now, "day": day, "table_name": name,
                           "freshness": "missing" if sla is not None else "not written",
                           "sla_hours": sla, "volume": "no_data", "schema_changed": False})
            continue
        stored = stored_volume.get(name, {})
        per_day, last = volume_since(dt, stored)
        last_at = _utc(last["timestamp"]) if last["timestamp"] is not None else None
        age = (now - last_at).total_seconds() / 3600 if last_at else None
        freshness = "unchecked" if sla is None else ("stale" if age is None or age > sla else "fresh")
        adds = pa.table(dt.get_add_actions(flatten=True))
        volume_rows += [{"table_name": name, "day": d, **v} for d, v in per_day.items()]
        series = {**stored, **per_day}
        measures = {"rows": "rows_added", "bytes": "bytes_added"}
        entry = series.get(day)
        added_today = entry is not None and bool(entry.get("rows_added") or entry.get("bytes_added"))
        today = {m: (entry.get(col) if entry else None) for m, col in measures.items()}
        verdicts: dict[str, tuple[str, float | None]] = {}
        if sla is None:
            verdict, fired = "unchecked", []
            medians: dict[str, float | None] = {"rows": None, "bytes": None}
        else:
            for m, col in measures.items():
                trailing = [series[d][col] for d in window if d in series and series[d].get(col)]
                verdicts[m] = volume_verdict(today[m] if added_today else None, trailing,
                                             cfg.volume.min_history_days, cfg.volume.factor)
            medians = {m: v[1] for m, v in verdicts.items()}
            verdict = next(r for r in VERDICT_RANK if any(v[0] == r for v in verdicts.values()))
            fired = [m for m, v in verdicts.items() if v[0] == "anomaly"]
        schema = schema_of(dt)
        before = previous.get(name, {}).get("schema_json")
        changed = before is not None and json.loads(before) != schema
        if changed:
            old = json.loads(before)
            changes.append({"observed_at": now, "table_name": name, "version": dt.version(),
                            "added": ", ".join(sorted(set(schema) - set(old))),
                            "removed": ", ".join(sorted(set(old) - set(schema))),
                            "changed": ", ".join(sorted(c for c in set(old) & set(schema) if old[c] != schema[c]))})
        health.append({
            "observed_at": now, "day": day, "table_name": name, "version": dt.version(), "last_commit_at": last_at,
            "age_hours": round(age, 3) if age is not None else None, "sla_hours": sla, "freshness": freshness,
            "rows_total": int(pc.sum(adds["num_records"]).as_py() or 0) if adds.num_rows else 0,
            "bytes_total": int(pc.sum(adds["size_bytes"]).as_py() or 0) if adds.num_rows else 0,
            "rows_added_day": today["rows"], "volume_median": medians["rows"], "volume": verdict,
            "bytes_added_day": today["bytes"], "bytes_median": medians["bytes"],
            "volume_measures": ", ".join(fired) or None,
            "schema_json": json.dumps(schema, sort_keys=True), "schema_changed": changed,
        })
        if freshness == "stale":
            alerts.append({"kind": "table_stale", "table": name, "dedup_key": f"freshness/{name}/{day}",
                           "summary": f"{name} is stale: last commit {age:.1f} h ago, SLA {sla:g} h"})
        if fired:  # one alert per table and day, whichever measures are out of band
            shown = {"rows": lambda n: f"{n:.10g}", "bytes": human_bytes}
            parts = [f"{m} added {shown[m](today[m])} vs trailing median {shown[m](medians[m])}" for m in fired]
            alerts.append({"kind": "volume_anomaly", "table": name, "dedup_key": f"volume/{name}/{day}",
                           "summary": f"{name}: volume anomaly on {day}: {'; '.join(parts)} "
                                      f"(allowed x{cfg.volume.factor:g})"})

    alerts = [a for a in alerts if a["dedup_key"] not in raised]
    append(HEALTH, pa.Table.from_pylist(health, schema=HEALTH_SCHEMA))
    if volume_rows:
        merge_upsert(VOLUME, pa.Table.from_pylist(volume_rows, schema=VOLUME_SCHEMA), keys=["table_name", "day"])
    if changes:
        append(SCHEMA_CHANGES, pa.Table.from_pylist(changes, schema=SCHEMA_CHANGE_SCHEMA))
    if alerts:
        append(ALERTS, pa.Table.from_pylist(
            [{"raised_at": now, "dedup_key": a["dedup_key"], "kind": a["kind"], "table_name": a["table"],
              "summary": a["summary"]} for a in alerts], schema=ALERT_SCHEMA))
    stale = [h["table_name"] for h in health if h["freshness"] in ("stale", "missing") and h["sla_hours"] is not None]
    anomalies = [h["table_name"] for h in health if h["volume"] == "anomaly"]
    return {"observed_at": now.isoformat(), "tables": len(health), "stale": stale, "anomalies": anomalies,
            "schema_changes": [c["table_name"] for c in changes], "alerts": alerts,
            "report_lines": [f"observed {len(health)} tables: {len(stale)} stale or missing, {len(anomalies)} "
                             f"volume anomalies, {len(changes)} schema changes, {len(alerts)} new alerts"]}


def record_quality(result: dict[str, Any], suite: str) -> None:
    """One row per validation (from include/lakehouse/quality.validate's result) for the page."""
    row = {"validated_at": datetime.now(timezone.utc), "suite": suite, "table_name": result.get("table"),
           "version": result.get("version"), "action": result.get("action"), "evaluated": result.get("evaluated"),
           "failed": len(result.get("failed") or []), "rows": result.get("rows"), "docs_url": result.get("docs")}
    append(QUALITY, pa.Table.from_pylist([row], schema=QUALITY_SCHEMA))


def health_page_data() -> dict[str, Any]:
    """What the "Lakehouse health" page shows: the latest observation per table with its
    volume series (rows and bytes added per day; bytes None for days recorded before bytes were
    measured), the latest schema changes, quality per suite, drift checks."""
    health_rows = read_ops(HEALTH)
    latest = latest_by(health_rows, "table_name", "observed_at")
    series: dict[str, list[tuple[str, int]]] = {}
    bytes_series: dict[str, list[tuple[str, int | None]]] = {}
    for row in sorted(read_ops(VOLUME), key=lambda r: r["day"]):
        series.setdefault(row["table_name"], []).append((row["day"], row["rows_added"]))
        bytes_series.setdefault(row["table_name"], []).append((row["day"], row.get("bytes_added")))
    return {
        "observed_at": max((r["observed_at"] for r in health_rows), default=None),
        "tables": [latest[k] for k in sorted(latest)],
        "volume": series,
        "volume_bytes": bytes_series,
        "schema_changes": sorted(read_ops(SCHEMA_CHANGES), key=lambda r: r["observed_at"], reverse=True)[:20],
        "quality": sorted(latest_by(read_ops(QUALITY), "suite", "validated_at").values(), key=lambda r: r["suite"]),
        "drift": sorted(read_ops(DRIFT), key=lambda r: r["checked_at"], reverse=True)[:10],
        "alerts": sorted(read_ops(ALERTS), key=lambda r: r["raised_at"], reverse=True)[:20],
        "dags": sorted(latest_by(read_ops(DAG_HEALTH), "dag_id", "observed_at").values(), key=lambda r: r["dag_id"]),
    }

