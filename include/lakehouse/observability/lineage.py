"""Lineage of the lakehouse's tables: the facts an OpenLineage dataset reports for a registered
table (stable namespace/name, schema, rows, bytes, version), and the table-level graph built
from the OpenLineage events into `ops/lineage_edges` (with dbt's column lineage). An output row
keeps the inputs of the runs that wrote it (`sources`), so the graph links each run of a mapped
task (one per map index) from its own inputs only; rows from before `sources` link every input
of their job to every output of it.

A table's dataset is namespace `lakehouse`, name = its registry name (`silver/orders`): the
same on a laptop and in a deployment, whatever LAKEHOUSE_ROOT is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.compute as pc

from include.lakehouse.tables.delta import add_actions, merge_upsert, try_open

NAMESPACE = "lakehouse"
EDGES = "ops/lineage_edges"
ASSET_SCHEME = "lakehouse://"

EDGE_SCHEMA = pa.schema([
    ("job", pa.string()), ("direction", pa.string()), ("namespace", pa.string()), ("dataset", pa.string()),
    ("event_time", pa.string()), ("run_id", pa.string()), ("row_count", pa.int64()),
    ("fields", pa.string()), ("column_lineage", pa.string()), ("sources", pa.string()),
])
EDGE_KEYS = ["job", "direction", "namespace", "dataset"]


def table_of_asset_uri(uri: str) -> str | None:
    """`lakehouse://silver/orders` -> `silver/orders` (None for other assets, e.g. kafka://)."""
    if not uri.startswith(ASSET_SCHEME):
        return None
    name = uri[len(ASSET_SCHEME):]
    return name if name.split("/", 1)[0] not in ("landing", "ml") else None  # signals, not tables


def table_facts(name: str) -> dict[str, Any]:
    """What the dataset reports for a registered table: schema fields, rows, bytes, files and
    version of its current snapshot (fields empty when the table does not exist yet)."""
    dt = try_open(name)
    if dt is None:
        return {"name": name, "fields": [], "rows": None, "bytes": None, "files": None, "version": None}
    adds = add_actions(dt, flatten=True)
    fields = [(f["name"], f["type"] if isinstance(f["type"], str) else f["type"].get("type", "struct"))
              for f in json.loads(dt.schema().to_json())["fields"]]
    return {"name": name, "fields": fields, "version": dt.version(), "files": adds.num_rows,
            "rows": int(pc.sum(adds["num_records"]).as_py() or 0) if adds.num_rows else 0,
            "bytes": int(pc.sum(adds["size_bytes"]).as_py() or 0) if adds.num_rows else 0}


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """The run events of an OpenLineage file transport's log (JSON lines; bad lines skipped)."""
    events = []
    file = Path(path)
    if not file.exists():
        return events
    for line in file.read_text().splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and event.get("job"):
            events.append(event)
    return events


def normalise(namespace: str, name: str) -> tuple[str, str]:
    """A stable identity for a dataset: dbt's DuckDB relations `<db>.<layer>.<table>` that are
    registered tables become `lakehouse`/`<layer>/<table>`; other DuckDB relations (staging,
    intermediate models) `dbt`/`<schema>.<model>`, without the machine-specific database path."""
    if namespace.startswith("duckdb://"):
        parts = name.split(".")
        if len(parts) == 3:
            from include.lakehouse.errors import UnknownTableError
            from include.lakehouse.tables.registry import get_table

            try:
                return NAMESPACE, get_table(f"{parts[1]}/{parts[2]}").name
            except UnknownTableError:
                pass
        return "dbt", ".".join(parts[1:] if len(parts) == 3 else parts)
    return namespace, name


def edges_from_events(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One edge per (job, direction, dataset): the latest COMPLETE event's view of it. An output
    row also keeps `sources` (JSON list): the inputs of the run events that wrote it, added up
    over those runs, so the runs of a mapped task each link only their own inputs to their output."""
    edges: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for event in sorted(events, key=lambda e: e.get("eventTime") or ""):
        if event.get("eventType") != "COMPLETE":
            continue
        job = event["job"]["name"]
        sources = [_display(*normalise(d["namespace"], d["name"])) for d in event.get("inputs") or []]
        for direction, key in (("in", "inputs"), ("out", "outputs")):
            for ds in event.get(key) or []:
                facets = ds.get("facets") or {}
                stats = (ds.get("outputFacets") or {}).get("outputStatistics") \
                    or (ds.get("inputFacets") or {}).get("inputStatistics") or {}
                columns = {out: [_source(f, sources) + f".{f.get('field')}" for f in spec.get("inputFields") or []]
                           for out, spec in ((facets.get("columnLineage") or {}).get("fields") or {}).items()}
                namespace, name = normalise(ds["namespace"], ds["name"])
                before = edges.get((job, direction, namespace, name))
                edges[(job, direction, namespace, name)] = {
                    "job": job, "direction": direction, "namespace": namespace, "dataset": name,
                    "event_time": event.get("eventTime"), "run_id": (event.get("run") or {}).get("runId"),
                    "row_count": stats.get("rowCount"),
                    "fields": json.dumps([f.get("name") for f in (facets.get("schema") or {}).get("fields") or []]),
                    "column_lineage": json.dumps(columns) if columns else None,
                    "sources": _union(before and before["sources"], sources) if direction == "out" else None,
                }
    return list(edges.values())


def _union(stored: str | None, sources: Iterable[str]) -> str:
    """`sources` added to a stored JSON list of sources (None: none stored), as a sorted JSON list."""
    return json.dumps(sorted(set(json.loads(stored) if stored else ()) | set(sources)))


def _source(field: dict[str, Any], sources: list[str]) -> str:
    """The dataset a column comes from; dbt over Delta reads `delta_scan(...)`, which the SQL
    parser names `delta_scan`: with one input that is the model's input table."""
    name = _display(*normalise(field.get("namespace", ""), field.get("name", "")))
    return sources[0] if name.endswith("delta_scan") and len(sources) == 1 else name


def _display(namespace: str, name: str) -> str:
    """How the graph names a dataset: a lakehouse table by its registry name, others with their namespace."""
    return name if namespace == NAMESPACE else f"{namespace}/{name}"


def record_lineage(path: str | Path) -> dict[str, Any]:
    """Fold the events of the transport log at `path` into ops/lineage_edges (idempotent)."""
    events = read_events(path)
    edges = edges_from_events(events)
    if edges:
        stored = _stored_sources()
        for edge in edges:  # what earlier runs (maybe gone from the log since) fed into the output
            if edge["direction"] == "out":
                edge["sources"] = _union(stored.get(tuple(edge[k] for k in EDGE_KEYS)), json.loads(edge["sources"]))
        merge_upsert(EDGES, pa.Table.from_pylist(edges, schema=EDGE_SCHEMA), keys=EDGE_KEYS)
    jobs = {e["job"] for e in edges}
    return {"events": len(events), "edges": len(edges), "jobs": len(jobs),
            "report_lines": [f"lineage: {len(events)} events, {len(edges)} edges of {len(jobs)} jobs"]}


def _stored_sources() -> dict[tuple[str, ...], str]:
    """The recorded sources of every output row of ops/lineage_edges (rows from before sources were
    recorded have none)."""
    dt = try_open(EDGES)
    if dt is None or "sources" not in dt.schema().to_arrow().names:
        return {}
    rows = dt.to_pyarrow_dataset().to_table(columns=[*EDGE_KEYS, "sources"]).to_pylist()
    return {tuple(r[k] for k in EDGE_KEYS): r["sources"] for r in rows if r["direction"] == "out" and r["sources"]}


def lineage_graph() -> dict[str, Any]:
    """Table-level graph from ops/lineage_edges: dataset -> dataset through a job, the jobs,
    and the column lineage per output dataset (dbt models)."""
    dt = try_open(EDGES)
    return graph_of(dt.to_pyarrow_dataset().to_table().to_pylist() if dt is not None else [])


def graph_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The graph of edge rows (ops/lineage_edges rows, or `edges_from_events` of a transport log).

    An output row with `sources` is linked from those (the inputs of the runs that wrote it); a
    row recorded before sources were kept falls back to every input of its job."""
    inputs: dict[str, set[str]] = {}
    outputs: dict[str, set[str]] = {}
    columns: dict[str, dict[str, list[str]]] = {}
    links: set[tuple[str, str, str]] = set()
    for row in rows:
        dataset = _display(row["namespace"], row["dataset"])
        (inputs if row["direction"] == "in" else outputs).setdefault(row["job"], set()).add(dataset)
        if row["direction"] == "out" and row.get("column_lineage"):
            columns[dataset] = json.loads(row["column_lineage"])
    for row in rows:
        if row["direction"] != "out":
            continue
        dst = _display(row["namespace"], row["dataset"])
        sources = json.loads(row["sources"]) if row.get("sources") is not None else inputs.get(row["job"], ())
        links |= {(src, dst, row["job"]) for src in sources if src != dst}
    edges = sorted(links)
    datasets = sorted({d for group in (*inputs.values(), *outputs.values()) for d in group})
    return {"datasets": datasets, "edges": [{"source": s, "target": t, "job": j} for s, t, j in edges],
            "jobs": sorted(set(inputs) | set(outputs)), "columns": columns,
            "updated_at": max((r["event_time"] for r in rows if r["event_time"]), default=None)}


def downstream_chain(graph: dict[str, Any], start: str) -> list[str]:
    """Datasets reachable from `start` (breadth first), for "what does this table feed"."""
    seen, frontier = [start], [start]
    while frontier:
        nxt = [e["target"] for e in graph["edges"] if e["source"] in frontier and e["target"] not in seen]
        seen += list(dict.fromkeys(nxt))
        frontier = nxt
    return seen

