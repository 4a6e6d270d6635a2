"""Setup shared by the engine benchmark families (kafka, scd2, cdc): import path, an embedded
broker on a free port, same-run comparisons (interleaved repeats, medians)."""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
for _path in (str(ROOT / "plugins"), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_root(prefix: str) -> Path:
    """A new, empty LAKEHOUSE_ROOT (registered tables resolve under it from now on)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["LAKEHOUSE_ROOT"] = str(root / "lakehouse")
    return root


@contextlib.contextmanager
def broker(log_dir: Path) -> Iterator[dict[str, str]]:
    """The embedded broker of `make demo` on a free port; yields the client configuration."""
    from scripts import kafka_broker

    port = free_port()
    proc = kafka_broker.start(port, log_dir / "kafka.log")
    try:
        yield kafka_broker.client_config(port)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def interleaved(runs: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Each callable returns its own measured seconds; they take turns `repeats` times, so a busy
    moment of the machine hits every contender alike."""
    out: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            out[name].append(run())
    return out


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def median(values: list[float]) -> float:
    return statistics.median(values)


def comparison(measure: str, project: float, peer: float, peer_name: str, unit: str, target: str,
               higher_is_better: bool = False) -> dict:
    """One same-run comparison; ratio > 1 means the project is slower than its peer."""
    ratio = peer / project if higher_is_better else project / peer
    return {"measure": measure, "project": round(project, 4), "peer": round(peer, 4), "peer_name": peer_name,
            "unit": unit, "ratio": round(ratio, 3), "target": target}
