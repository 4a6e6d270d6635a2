"""The project's DAGs as the demo sees them: how each starts (time schedule, manual, asset
trigger), the assets it consumes and produces, which DAGs feed it, its family for the summary,
and the order to wait for them in. Derived from the DAGs Airflow registered from the DAG folder:
no DAG id is written here."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from scripts.local_airflow.settings import ROOT, DemoError

FAMILY_TAG = "week:"  # a DAG tagged "week:<topic>" reports its share of the demo under <topic>
CORE = "core"
# The lakehouse and ML loop: the demo runs these families first, then their ops DAGs. Every other
# family (a later curriculum week: streaming, multi-format, model ops, ...) runs after them, one
# family at a time, so it neither slows the loop on a small machine nor hides its own cost: the
# summary reports each phase's wall time, and the loop's with its ops apart from the later weeks.
MAIN_FAMILIES = (CORE, "ml")
OPS_PHASE = "ops"  # DAGs tagged "ops" of the loop's families: run one at a time, after the loop
LATER_OPS_PHASE = "ops of later weeks"  # DAGs tagged "ops" of a later week: one at a time, at the end
MAIN_PHASES = ("lakehouse and ML loop", OPS_PHASE)  # the summary adds these up: the loop and its ops


@dataclass
class DagInfo:
    dag_id: str
    kind: str  # "time", "none" or "asset"
    consumes: set[str] = field(default_factory=set)
    produces: set[str] = field(default_factory=set)
    upstream: set[str] = field(default_factory=set)
    demo_conf: dict | None = None
    ops: bool = False  # tagged "ops": acts on what the pipeline DAGs wrote, so it runs after them
    family: str = CORE


def family(tags) -> str:
    """The DAG's family: the topic of its first "week:<topic>" tag, else "core"."""
    return next((t.removeprefix(FAMILY_TAG) for t in sorted(tags or ()) if t.startswith(FAMILY_TAG)), CORE)


def dag_files(folder: Path | None = None) -> set[str]:
    """The files of the DAG folder the dag-processor looks for DAGs in, relative to it: Python
    files mentioning both "airflow" and "dag" (its safe-mode heuristic)."""
    folder = folder or ROOT / "dags"
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*.py")
            if b"airflow" in (text := p.read_bytes().lower()) and b"dag" in text}


def registered_dags(api, folder: Path | None = None) -> dict[str, DagInfo] | None:
    """The DAG folder's DAGs as the dag-processor registered them - the REST API's DAGs, their
    schedules and params, and the assets their schedules consume and their tasks produce (the
    dag-processor writes a DAG and its asset references together) - or None while a file of the
    folder has no DAG registered yet. Raises DemoError when a file fails to import.
    The demo asks Airflow rather than parsing the folder itself: a parse in the runner cost 3-4 s
    of CPU while the components started on 2 cores."""
    errors = api.get_all("/importErrors", "import_errors")
    if errors:
        first = errors[0]
        raise DemoError(f"{len(errors)} DAG file(s) fail to import; first: {first['filename']}:\n{first['stack_trace']}")
    listed = [d for d in api.get_all("/dags", "dags") if not d.get("is_stale")]
    if dag_files(folder) - {d.get("relative_fileloc") for d in listed}:
        return None
    listed = [d for d in listed if "canary" not in {t["name"] for t in d.get("tags") or []}]  # the alert
    with ThreadPoolExecutor(8) as pool:  # self-test fails on purpose: `make canary` runs it
        details = list(pool.map(lambda d: api.get(f"/dags/{d['dag_id']}/details"), listed))
    consumes: dict[str, set[str]] = {}
    produces: dict[str, set[str]] = {}
    for asset in api.get_all("/assets", "assets"):
        for ref in asset.get("scheduled_dags") or []:
            consumes.setdefault(ref["dag_id"], set()).add(asset["name"])
        for ref in asset.get("producing_tasks") or []:
            produces.setdefault(ref["dag_id"], set()).add(asset["name"])
    dags: dict[str, DagInfo] = {}
    for dag in details:
        dag_id, tags = dag["dag_id"], [t["name"] for t in dag.get("tags") or []]
        kind = "asset" if dag.get("asset_expression") else "time" if dag.get("timetable_summary") else "none"
        params = {k: v.get("value") if isinstance(v, dict) else v for k, v in (dag.get("params") or {}).items()}
        dags[dag_id] = DagInfo(dag_id, kind, consumes=consumes.get(dag_id, set()) if kind == "asset" else set(),
                               produces=produces.get(dag_id, set()), demo_conf=params or None, ops="ops" in tags,
                               family=family(tags))
    for info in dags.values():
        info.upstream = {d.dag_id for d in dags.values() if d.produces & info.consumes and d.dag_id != info.dag_id}
    return dags


def dependency_order(dags: dict[str, DagInfo]) -> list[str]:
    """Producers before consumers; DAGs tagged "ops" (maintenance, restore) after all others.
    A feedback loop (drift_check asks train_model for a model, whose new champion drift_check
    checks) is entered at the DAG of the loop that something already done feeds."""
    order, done = [], set()
    pending = sorted(dags, key=lambda d: (dags[d].ops, d))
    while pending:
        ready = [d for d in pending if dags[d].upstream <= done]
        if all(dags[d].ops for d in ready):  # maybe a cycle: enter it where a finished DAG feeds it
            ready = [d for d in pending if not dags[d].ops and dags[d].upstream & done][:1] or ready
        if any(not dags[d].ops for d in ready):
            ready = [d for d in ready if not dags[d].ops]
        if not ready:
            raise DemoError(f"asset dependency cycle among DAGs: {pending}")
        for d in ready:
            order.append(d)
            done.add(d)
            pending.remove(d)
    return order


def phases(dags: dict[str, DagInfo], order: list[str]) -> list[tuple[str, list[str]]]:
    """The demo's phases, in `order` within each: the main loop (core and ml families), its ops
    DAGs, then each later family's pipeline DAGs, then the later families' ops DAGs (the runner
    runs ops DAGs one at a time)."""
    main = [d for d in order if dags[d].family in MAIN_FAMILIES]
    pipeline = [d for d in order if not dags[d].ops]
    later = sorted({dags[d].family for d in pipeline} - set(MAIN_FAMILIES))
    out = [(MAIN_PHASES[0], [d for d in main if not dags[d].ops]), (OPS_PHASE, [d for d in main if dags[d].ops])]
    out += [(f"week: {family}", [d for d in pipeline if dags[d].family == family]) for family in later]
    out.append((LATER_OPS_PHASE, [d for d in order if dags[d].ops and dags[d].family not in MAIN_FAMILIES]))
    return [(name, members) for name, members in out if members]


def not_from_later_phases(awaited: dict[str, set[str]], steps: list[tuple[str, list[str]]]) -> dict[str, set[str]]:
    """`awaited` without the upstream DAGs of a later phase: a DAG of the loop that a later week
    also feeds (publish_formats, on every gold table, some written by streaming) is done with the
    loop; the later week's updates start more runs of it then."""
    step_of = {d: i for i, (_, members) in enumerate(steps) for d in members}
    return {d: {u for u in ups if step_of.get(u, 0) <= step_of.get(d, 0)} for d, ups in awaited.items()}


def awaited_upstream(dags: dict[str, DagInfo], order: list[str]) -> dict[str, set[str]]:
    """For each DAG, the upstream DAGs that come before it in `order` (in a feedback loop the
    later DAG of the loop is not awaited)."""
    position = {d: i for i, d in enumerate(order)}
    return {d: {u for u in dags[d].upstream if position[u] < position[d]} for d in order}
