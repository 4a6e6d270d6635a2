"""The /lakehouse pages (FastAPI, mounted in the api-server by ui_plugin.py; shown inside the
Airflow UI as external views). Server-rendered HTML with inline SVG charts: no build step, no
JavaScript. Every page needs an Airflow login (the api-server's JWT cookie). Data comes from
the registry and ops/ tables through include/lakehouse/observability; reports are served from
the paths those tables recorded, never from paths guessed here.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from airflow.api_fastapi.core_api.security import requires_authenticated

AUTHENTICATED = requires_authenticated()  # an Airflow login (JWT cookie or bearer token)
app = FastAPI(title="Lakehouse pages", dependencies=[Depends(AUTHENTICATED)])

STATUS_COLOURS = {"fresh": "#2e7d32", "ok": "#2e7d32", "pass": "#2e7d32", "passed": "#2e7d32", "success": "#2e7d32",
                  "stale": "#c62828", "missing": "#c62828", "anomaly": "#c62828", "drift": "#c62828",
                  "failed": "#c62828", "warn": "#ef6c00", "quarantine": "#ef6c00"}
STYLE = """
body{font-family:system-ui,sans-serif;margin:1.2rem;color:#1b1b1b}
nav a{margin-right:1rem} table{border-collapse:collapse;margin:.5rem 0 1.5rem}
td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left;font-size:.9rem}
th{background:#f4f6f8} .badge{color:#fff;border-radius:.6rem;padding:.05rem .5rem;font-size:.8rem}
.muted{color:#666} svg text{font-size:11px;font-family:system-ui,sans-serif}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def badge(status: Any) -> str:
    colour = STATUS_COLOURS.get(str(status), "#607d8b")
    return f'<span class="badge" data-status="{_e(status)}" style="background:{colour}">{_e(status)}</span>'


def page(title: str, body: str) -> HTMLResponse:
    nav = ('<nav><a href="/lakehouse/health">Lakehouse health</a><a href="/lakehouse/lineage">Lineage</a>'
           '<a href="/lakehouse/drift/latest">Latest drift report</a></nav>')
    return HTMLResponse(f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
                        f"<style>{STYLE}</style></head><body>{nav}<h1>{_e(title)}</h1>{body}</body></html>")


def table_link(name: str) -> str:
    return f'<a href="/lakehouse/tables/{quote(name, safe="/")}">{_e(name)}</a>'


def bars(series: list[tuple[str, int | None]], width: int = 160, height: int = 28, unit: str = "rows") -> str:
    """Rows (or bytes) added per day as a small SVG bar chart (newest right); a day without a
    value (bytes recorded before bytes were measured) is an empty slot titled "not measured"."""
    series = series[-14:]
    if not series:
        return '<span class="muted">no history</span>'
    top = max(v or 0 for _, v in series) or 1
    step = width / len(series)
    colour = "#00897b" if unit == "bytes" else "#1976d2"
    rects = "".join(
        f'<rect x="{i * step:.1f}" y="{height - (v or 0) / top * height:.1f}" width="{max(step - 2, 1):.1f}" '
        f'height="{(v or 0) / top * height:.1f}" fill="{colour}"><title>{_e(d)}: '
        f'{"not measured" if v is None else (_size(v) if unit == "bytes" else f"{v} {unit}")}</title></rect>'
        for i, (d, v) in enumerate(series))
    return (f'<svg class="volume" data-measure="{_e(unit)}" width="{width}" height="{height}" role="img" '
            f'aria-label="{_e(unit)} added per day">{rects}</svg>')


def _size(n: Any) -> str:
    from include.lakehouse.observability.health import human_bytes

    return human_bytes(n)


def _measures(fired: str | None) -> str:
    """Which measures made a volume anomaly (rows, bytes), after its badge."""
    return f' <span class="muted" data-measures="{_e(fired)}">{_e(fired)}</span>' if fired else ""


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


@app.get("/", include_in_schema=False)
def index() -> RedirectResponse:
    return RedirectResponse("/lakehouse/health")


@app.get("/health", response_class=HTMLResponse)
def health_page() -> HTMLResponse:
    from include.lakehouse.observability.health import health_page_data
    from include.lakehouse.observability.models import model_versions

    data = health_page_data()
    rows = "".join(
        f"<tr data-table='{_e(t['table_name'])}'><td>{table_link(t['table_name'])}</td><td>{badge(t['freshness'])}</td>"
        f"<td>{_fmt(t.get('age_hours'))} h / {_fmt(t.get('sla_hours'), 0)} h</td>"
        f"<td>{badge(t['volume'])}{_measures(t.get('volume_measures'))}</td>"
        f"<td>{_fmt(t.get('rows_added_day'))}</td><td>{bars(data['volume'].get(t['table_name'], []))}</td>"
        f"<td>{_size(t.get('bytes_added_day'))}</td>"
        f"<td>{bars(data['volume_bytes'].get(t['table_name'], []), unit='bytes')}</td>"
        f"<td>{_fmt(t.get('rows_total'))}</td><td>{_fmt(t.get('bytes_total'))}</td><td>{_fmt(t.get('version'))}</td>"
        f"<td>{'changed' if t.get('schema_changed') else ''}</td></tr>"
        for t in data["tables"])
    counts = {s: sum(1 for t in data["tables"] if t["freshness"] == s) for s in ("fresh", "stale", "missing")}
    anomalies = sum(1 for t in data["tables"] if t["volume"] == "anomaly")
    summary = (f"<p id='summary'>{len(data['tables'])} tables observed at {_e(data['observed_at'])}: "
               f"{counts['fresh']} fresh, {counts['stale']} stale, {counts['missing']} missing, "
               f"{anomalies} volume anomalies.</p>" if data["tables"] else
               "<p id='summary'>No observation yet: run the <b>observe_lakehouse</b> DAG.</p>")
    tables = "" if not rows else (
        "<h2>Tables</h2><table id='tables'><tr><th>table</th><th>freshness</th><th>age / SLA</th><th>volume</th>"
        "<th>rows added today</th><th>rows added per day</th><th>bytes added today</th><th>bytes added per day</th>"
        "<th>rows</th><th>bytes</th><th>version</th>"
        f"<th>schema</th></tr>{rows}</table>")
    quality = "".join(
        f"<tr><td>{_e(q['suite'])}</td><td>{table_link(q['table_name'] or '')}</td><td>{_fmt(q['version'])}</td>"
        f"<td>{badge(q['action'])}</td><td>{_fmt(q['failed'])} of {_fmt(q['evaluated'])}</td>"
        f"<td><a href='/lakehouse/quality/{quote(q['suite'])}/docs'>data docs</a></td></tr>" for q in data["quality"])
    drift = "".join(
        f"<tr><td>{_e(d.get('checked_at'))}</td><td>{_e(d.get('as_of_date'))}</td><td>{_e(d.get('model_version'))}</td>"
        f"<td>{_fmt(d.get('drift_share'), 2)}</td><td>{badge(d.get('verdict'))}</td></tr>" for d in data["drift"])
    changes = "".join(
        f"<tr><td>{_e(c['observed_at'])}</td><td>{table_link(c['table_name'])}</td><td>{_fmt(c['version'])}</td>"
        f"<td>{_e(c['added'])}</td><td>{_e(c['removed'])}</td><td>{_e(c['changed'])}</td></tr>"
        for c in data["schema_changes"])
    dags = "".join(
        f"<tr data-dag='{_e(d['dag_id'])}'><td><a href='/dags/{quote(d['dag_id'])}' target='_top'>{_e(d['dag_id'])}</a></td>"
        f"<td>{badge(d['last_state'])}</td><td>{d['runs']}</td><td>{d['failed']}</td><td>{d['retried']}</td>"
        f"<td>{d['deadline_misses']}</td><td>{_fmt(d['mean_duration_s'])}</td><td>{_fmt(d['max_duration_s'])}</td></tr>"
        for d in data["dags"])
    models = "".join(
        f"<tr><td>{_e(m['model'])}</td><td>v{_e(m['version'])}</td><td>{_e(', '.join(m['aliases']))}</td>"
        f"<td><a href='/lakehouse/models/{quote(m['version'])}/card'>model card</a></td></tr>" for m in model_versions())
    alerts = "".join(f"<tr><td>{_e(a['raised_at'])}</td><td>{_e(a['kind'])}</td><td>{_e(a['summary'])}</td></tr>"
                     for a in data["alerts"])
    body = (summary + tables
            + ("<h2>DAG runs (7 days)</h2><table id='dag-runs'><tr><th>DAG</th><th>last run</th><th>runs</th>"
               "<th>failed</th><th>retried</th><th>deadline misses</th><th>mean s</th><th>max s</th></tr>"
               f"{dags}</table>" if dags else "")
            + ("<h2>Data quality (Great Expectations)</h2><table id='quality'><tr><th>suite</th><th>table</th>"
               f"<th>version</th><th>result</th><th>failed</th><th></th></tr>{quality}</table>" if quality else "")
            + ("<h2>Drift (Evidently)</h2><p><a href='/lakehouse/drift/latest'>latest drift report</a></p>"
               "<table id='drift'><tr><th>checked</th><th>as of</th><th>model version</th><th>drift share</th>"
               f"<th>verdict</th></tr>{drift}</table>" if drift else "")
            + ("<h2>Models</h2><table id='models'><tr><th>model</th><th>version</th><th>aliases</th><th></th></tr>"
               f"{models}</table>" if models else "")
            + ("<h2>Schema changes</h2><table id='schema-changes'><tr><th>seen</th><th>table</th><th>version</th>"
               f"<th>added</th><th>removed</th><th>retyped</th></tr>{changes}</table>" if changes else "")
            + ("<h2>Alerts raised</h2><table id='alerts'><tr><th>raised</th><th>kind</th><th>summary</th></tr>"
               f"{alerts}</table>" if alerts else ""))
    return page("Lakehouse health", body)


def layout(datasets: list[str], edges: list[dict[str, str]]) -> dict[str, tuple[int, int]]:
    """Column = longest path from a source (bounded: cycles cannot loop), row = order in column."""
    depth = {d: 0 for d in datasets}
    for _ in range(len(datasets)):
        changed = False
        for e in edges:
            if depth[e["target"]] < depth[e["source"]] + 1 <= len(datasets):
                depth[e["target"]] = depth[e["source"]] + 1
                changed = True
        if not changed:
            break
    rows: dict[int, int] = {}
    place = {}
    for d in sorted(datasets, key=lambda d: (depth[d], d)):
        place[d] = (depth[d], rows.get(depth[d], 0))
        rows[depth[d]] = rows.get(depth[d], 0) + 1
    return place


def graph_svg(graph: dict[str, Any]) -> str:
    place = layout(graph["datasets"], graph["edges"])
    if not place:
        return ""
    col_w, row_h, box_w, box_h = 230, 34, 200, 24
    width = (max(c for c, _ in place.values()) + 1) * col_w
    height = (max(r for _, r in place.values()) + 1) * row_h + 10
    lines = "".join(
        f'<path d="M{place[e["source"]][0] * col_w + box_w},{place[e["source"]][1] * row_h + 17} '
        f'C{place[e["source"]][0] * col_w + box_w + 20},{place[e["source"]][1] * row_h + 17} '
        f'{place[e["target"]][0] * col_w - 20},{place[e["target"]][1] * row_h + 17} '
        f'{place[e["target"]][0] * col_w},{place[e["target"]][1] * row_h + 17}" fill="none" stroke="#90a4ae">'
        f'<title>{_e(e["job"])}</title></path>' for e in graph["edges"])
    nodes = "".join(
        f'<a href="/lakehouse/tables/{quote(d, safe="/")}"><g class="node" data-dataset="{_e(d)}">'
        f'<rect x="{c * col_w}" y="{r * row_h + 5}" width="{box_w}" height="{box_h}" rx="4" fill="#e3f2fd" '
        f'stroke="#1976d2"/><text x="{c * col_w + 6}" y="{r * row_h + 21}">{_e(d)}</text></g></a>'
        for d, (c, r) in place.items())
    return f'<svg id="lineage-graph" width="{width}" height="{height}">{lines}{nodes}</svg>'


@app.get("/lineage", response_class=HTMLResponse)
def lineage_page() -> HTMLResponse:
    from include.lakehouse.observability.lineage import lineage_graph

    graph = lineage_graph()
    if not graph["edges"]:
        return page("Lineage", "<p>No lineage yet: run the pipeline, then <b>observe_lakehouse</b>.</p>")
    edges = "".join(f"<tr><td>{table_link(e['source'])}</td><td>{_e(e['job'])}</td><td>{table_link(e['target'])}</td></tr>"
                    for e in graph["edges"])
    columns = "".join(
        f"<tr><td>{_e(ds)}</td><td>{_e(col)}</td><td>{_e(', '.join(src))}</td></tr>"
        for ds, cols in sorted(graph["columns"].items()) for col, src in sorted(cols.items()))
    body = (f"<p id='summary'>{len(graph['datasets'])} datasets, {len(graph['edges'])} edges, {len(graph['jobs'])} "
            f"jobs; events up to {_e(graph['updated_at'])}.</p>{graph_svg(graph)}"
            "<h2>Edges</h2><table id='edges'><tr><th>from</th><th>job</th><th>to</th></tr>" + edges + "</table>"
            + ("<h2>Column lineage (dbt)</h2><table id='columns'><tr><th>dataset</th><th>column</th><th>from</th></tr>"
               f"{columns}</table>" if columns else ""))
    return page("Lineage", body)


@app.get("/tables/{name:path}", response_class=HTMLResponse)
def table_page(name: str) -> HTMLResponse:
    from include.lakehouse.errors import UnknownTableError
    from include.lakehouse.observability.health import HEALTH, VOLUME, latest_by, read_ops
    from include.lakehouse.observability.lineage import lineage_graph
    from include.lakehouse.tables.registry import get_table

    try:
        spec = get_table(name)
    except UnknownTableError:
        raise HTTPException(404, f"{name} is not a registered table") from None
    latest = latest_by([r for r in read_ops(HEALTH) if r["table_name"] == name], "table_name", "observed_at").get(name)
    volume = sorted((r["day"], r["rows_added"], r.get("bytes_added")) for r in read_ops(VOLUME) if r["table_name"] == name)
    series = [(d, rows) for d, rows, _ in volume]
    bytes_series = [(d, size) for d, _, size in volume]
    graph = lineage_graph()
    upstream = sorted({e["source"] for e in graph["edges"] if e["target"] == name})
    downstream = sorted({e["target"] for e in graph["edges"] if e["source"] == name})
    writers = sorted({e["job"] for e in graph["edges"] if e["target"] == name})
    facts = (f"<p>{_e(spec.description)}</p><table id='facts'>"
             f"<tr><th>keys</th><td>{_e(', '.join(spec.keys))}</td></tr>"
             f"<tr><th>partitioned by</th><td>{_e(', '.join(spec.partition_by))}</td></tr>")
    if latest:
        facts += (f"<tr><th>freshness</th><td>{badge(latest['freshness'])} {_fmt(latest.get('age_hours'))} h "
                  f"(SLA {_fmt(latest.get('sla_hours'), 0)} h)</td></tr><tr><th>volume</th><td>{badge(latest['volume'])} "
                  f"{_measures(latest.get('volume_measures'))}</td></tr>"
                  f"<tr><th>rows added per day</th><td>{bars(series)}</td></tr>"
                  f"<tr><th>bytes added per day</th><td>{bars(bytes_series, unit='bytes')}</td></tr>"
                  f"<tr><th>rows</th><td>{_fmt(latest.get('rows_total'))}</td></tr>"
                  f"<tr><th>bytes</th><td>{_size(latest.get('bytes_total'))}</td></tr>"
                  f"<tr><th>version</th><td>{_fmt(latest.get('version'))}</td></tr>"
                  f"<tr><th>columns</th><td>{_e(', '.join(json.loads(latest['schema_json'] or '{}')))}</td></tr>")
    facts += "</table>"
    body = (facts + "<h2>Lineage</h2><table id='neighbours'>"
            f"<tr><th>upstream</th><td>{' '.join(table_link(u) for u in upstream) or '-'}</td></tr>"
            f"<tr><th>written by</th><td>{_e(', '.join(writers)) or '-'}</td></tr>"
            f"<tr><th>downstream</th><td>{' '.join(table_link(d) for d in downstream) or '-'}</td></tr></table>")
    return page(name, body)


def _local_file(recorded: str | None, what: str) -> Path:
    """A report file an ops/ table recorded (path or file:// URL); 404 when gone."""
    if not recorded:
        raise HTTPException(404, f"no {what} recorded yet")
    path = Path(unquote(urlparse(recorded).path) if recorded.startswith("file://") else recorded)
    if not path.is_file():
        raise HTTPException(404, f"the recorded {what} {path.name} no longer exists")
    return path


@app.get("/drift/latest")
def latest_drift_report() -> FileResponse:
    from include.lakehouse.observability.health import DRIFT, read_ops

    rows = [r for r in read_ops(DRIFT) if r.get("report_path")]
    latest = max(rows, key=lambda r: r["checked_at"]) if rows else {}
    return FileResponse(_local_file(latest.get("report_path"), "drift report"), media_type="text/html")


@app.get("/models/{version}/card", response_class=HTMLResponse)
def model_card_page(version: str) -> HTMLResponse:
    """The model card the version's training run logged to MLflow."""
    from include.lakehouse.observability.models import model_card

    card = model_card(version)
    if card is None:
        raise HTTPException(404, f"model version {version} has no model card")
    return HTMLResponse(card)


@app.get("/mlflow/runs/{run_id}", response_class=HTMLResponse)
def mlflow_run_page(run_id: str) -> HTMLResponse:
    """An MLflow run (the "MLflow run" extra link of a task): what it logged, from the store."""
    from include.lakehouse.observability.models import run_summary

    run = run_summary(run_id)
    if run is None:
        raise HTTPException(404, f"no MLflow run {run_id}")

    def rows(values: dict) -> str:
        return "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in sorted(values.items())) or \
            "<tr><td colspan=2>-</td></tr>"

    body = (f"<p>run <code>{_e(run['run_id'])}</code>, status {_e(run['status'])}</p>"
            f"<h2>Metrics</h2><table>{rows(run['metrics'])}</table>"
            f"<h2>Parameters</h2><table>{rows(run['params'])}</table>"
            f"<h2>Tags</h2><table>{rows(run['tags'])}</table>"
            "<h2>Artifacts</h2><ul>" + "".join(f"<li>{_e(a)}</li>" for a in run["artifacts"]) + "</ul>")
    return page(f"MLflow run {run['name'] or run['run_id']}", body)


@app.get("/quality/{suite}/docs/{asset:path}")
@app.get("/quality/{suite}/docs")
def data_docs(suite: str, asset: str = "") -> Response:
    """The data docs site of the suite's latest validation (its index, or a file under the site)."""
    from include.lakehouse.observability.health import QUALITY, latest_by, read_ops

    latest = latest_by(read_ops(QUALITY), "suite", "validated_at").get(suite) or {}
    index = _local_file(latest.get("docs_url"), f"data docs of suite {suite}")
    if not asset:
        return RedirectResponse(f"/lakehouse/quality/{quote(suite)}/docs/{index.name}")
    site = index.parent.resolve()
    target = (site / asset).resolve()
    if site not in target.parents or not target.is_file():
        raise HTTPException(404, f"{asset} is not part of the data docs site")
    return FileResponse(target)
