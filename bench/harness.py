"""The benchmark harness: discovery of families, scratch space, same-run comparisons with their
peer, results in bench/results/<family>.json (+ latest.json) and the report bench/results/latest.md
with a chart per family.

A family is a module `bench/<family>.py` with `run() -> dict` (JSON-able). Figures measured beside
a peer in the same run go under "comparisons" (see `compare`); targets are recorded next to the
numbers, never asserted (speed is not a test).
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
NOT_FAMILIES = {"__init__", "__main__", "harness", "run"}


def families() -> list[str]:
    """Every bench/<family>.py (modules starting with _ are shared helpers)."""
    return sorted(p.stem for p in (ROOT / "bench").glob("*.py") if p.stem not in NOT_FAMILIES and not p.stem.startswith("_"))


def load(family: str):
    return importlib.import_module(f"bench.{family}")


def scratch(prefix: str) -> Path:
    """A fresh scratch directory for one benchmark (left in the temp dir for inspection)."""
    return Path(tempfile.mkdtemp(prefix=f"bench-{prefix}-"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def median(values: list[float], digits: int = 4) -> float:
    return round(statistics.median(values), digits)


def compare(measure: str, project: float, peer: float, *, peer_name: str, unit: str = "s",
            higher_is_better: bool = False, target: str | None = None) -> dict:
    """One figure of the project beside its peer measured in the same run. `ratio` > 1 always
    means the project is slower/bigger than its peer (project/peer for times and sizes,
    peer/project for throughputs)."""
    ratio = (peer / project if project else float("inf")) if higher_is_better else (project / peer if peer else float("inf"))
    return {"measure": measure, "project": round(project, 4), "peer": round(peer, 4), "peer_name": peer_name,
            "unit": unit, "ratio": round(ratio, 3), "higher_is_better": higher_is_better, "target": target}


def machine() -> dict:
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}


def record(family: str, result: dict, results_dir: Path = RESULTS) -> Path:
    """Write one family's result (with machine and time) and merge it into latest.json."""
    results_dir.mkdir(parents=True, exist_ok=True)
    entry = {"family": family, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "machine": machine(), "result": result}
    path = results_dir / f"{family}.json"
    path.write_text(json.dumps(entry, indent=2, default=str))
    latest = results_dir / "latest.json"
    merged = json.loads(latest.read_text()) if latest.exists() else {}
    merged.setdefault("results", {})[family] = result
    merged.setdefault("finished", {})[family] = entry["finished"]
    merged["machine"] = entry["machine"]
    latest.write_text(json.dumps(merged, indent=2, default=str))
    return path


def _chart(family: str, comparisons: list[dict], path: Path) -> bool:
    """Project vs peer per measure as horizontal bars (log scale when figures differ a lot)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the report still lists the figures
        return False
    labels = [f"{c['measure']} ({c['unit']})" for c in comparisons]
    fig, ax = plt.subplots(figsize=(8, 1.8 + 0.6 * len(labels)))
    ys = range(len(labels))
    ax.barh([y + 0.2 for y in ys], [c["project"] for c in comparisons], height=0.4, label="project")
    ax.barh([y - 0.2 for y in ys], [c["peer"] for c in comparisons], height=0.4, label="peer (same run)")
    for y, c in zip(ys, comparisons):
        ax.annotate(f"x{c['ratio']}", (max(c["project"], c["peer"]), y), xytext=(4, -4), textcoords="offset points",
                    fontsize=8)
    values = [v for c in comparisons for v in (c["project"], c["peer"]) if v > 0]
    if values and max(values) / min(values) > 50:
        ax.set_xscale("log")
    ax.set_yticks(list(ys), labels, fontsize=8)
    ax.set_title(f"{family}: project vs peer")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def _headline(result: dict) -> list[str]:
    """Top-level scalar figures of a family without comparisons."""
    return [f"{k} = {v}" for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)][:12]


def write_report(results_dir: Path = RESULTS) -> Path:
    """bench/results/latest.md from latest.json: per family its comparisons (ratio, target) and a chart."""
    latest = results_dir / "latest.json"
    merged = json.loads(latest.read_text()) if latest.exists() else {"results": {}}
    # a family's own file is the newest word on it: latest.json is rewritten by every run, and two
    # branches that each ran another family leave it behind one of them after a merge
    for path in sorted(results_dir.glob("*.json")):
        entry = json.loads(path.read_text()) if path.name != "latest.json" else None
        if isinstance(entry, dict) and entry.get("family") == path.stem and "result" in entry:
            if entry.get("finished", "") >= (merged.get("finished") or {}).get(path.stem, ""):
                merged.setdefault("results", {})[path.stem] = entry["result"]
                merged.setdefault("finished", {})[path.stem] = entry["finished"]
    latest.write_text(json.dumps(merged, indent=2, default=str))
    finished = merged.get("finished") or {}
    m = merged.get("machine") or {}
    lines = ["# Benchmarks (latest run of each family)", "",
             f"Machine: {m.get('cpus', '?')} CPUs, Python {m.get('python', '?')}, {m.get('platform', '?')}. "
             "Every ratio compares the project with its peer measured in the same run (>1: the project is slower "
             "or bigger). Regenerate with `make bench` (or `python -m bench.run <family>`).", ""]
    for family in sorted(merged.get("results", {})):
        result = merged["results"][family]
        lines += [f"## {family}", "", f"_measured {finished.get(family, 'before the harness recorded times')}_", ""]
        comparisons = result.get("comparisons") or [] if isinstance(result, dict) else []
        if comparisons:
            lines += ["| measure | project | peer | peer is | ratio | target |", "|---|---|---|---|---|---|"]
            lines += [f"| {c['measure']} | {c['project']} {c['unit']} | {c['peer']} {c['unit']} | {c['peer_name']} "
                      f"| {c['ratio']} | {c.get('target') or '-'} |" for c in comparisons]
            png = results_dir / f"{family}.png"
            if _chart(family, comparisons, png):
                lines += ["", f"![{family}]({png.name})"]
        elif isinstance(result, dict):
            lines += [f"- {h}" for h in _headline(result)] or ["- (no scalar figures)"]
        if isinstance(result, dict) and result.get("note"):
            lines += ["", f"Note: {result['note']}"]
        lines.append("")
    path = results_dir / "latest.md"
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str]) -> int:
    known = families()
    chosen = argv or known
    unknown = [n for n in chosen if n not in known]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {known}", file=sys.stderr)
        return 2
    for family in chosen:
        print(f"bench {family} ...", flush=True)
        result = load(family).run()
        print(json.dumps(result, indent=2, default=str), flush=True)
        print(f"  -> {record(family, result)}", flush=True)
    print(f"report: {write_report()}")
    return 0
