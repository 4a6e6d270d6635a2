"""Setup shared by the engine families (kafka, scd2, cdc): a fresh LAKEHOUSE_ROOT, the embedded
broker on a free port, interleaved repeats (each contender takes its turn, so a busy moment of the
machine hits all of them alike)."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Callable, Iterator

from bench.harness import free_port, scratch


def fresh_root(prefix: str) -> Path:
    """A new scratch directory whose `lakehouse/` is LAKEHOUSE_ROOT from now on (registered tables
    resolve under it)."""
    root = scratch(prefix)
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
    """Each callable returns its own measured seconds; they take turns `repeats` times."""
    out: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            out[name].append(run())
    return out


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started
