"""Real OS processes for concurrency and crash tests: the project's own functions in children.

`race` starts N spawned processes that wait on one barrier, then call the same function at
once (two stuck task tries, a manual run beside a scheduled one). `kill_at` runs a function
in a child and SIGKILLs it at a named window (when the child reaches a marker) or after a
delay. Children get the parent's environment (LAKEHOUSE_ROOT included) and the project on
sys.path; delta-rs' runtime cannot survive a fork, hence spawn.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_CTX = mp.get_context("spawn")


def _resolve(target: str) -> Any:
    module, _, name = target.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _child(target, args, kwargs, env, barrier, results, index):
    os.environ.update(env)
    sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
    try:
        function = _resolve(target)  # import first: the race starts at the call, not at the (seconds of) imports
        if barrier is not None:
            barrier.wait(timeout=120)
        results.put((index, "ok", function(*args, **kwargs)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which asserts on it
        results.put((index, "error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


def race(target: str, calls: list[tuple[tuple, dict]], *, timeout: float = 300) -> list[tuple[str, Any]]:
    """Run `target` (dotted path) once per (args, kwargs) in parallel processes released together.
    Returns [(status, result or error text)] in call order."""
    barrier = _CTX.Barrier(len(calls))
    results = _CTX.Queue()
    env = dict(os.environ)
    procs = [_CTX.Process(target=_child, args=(target, a, k, env, barrier, results, i)) for i, (a, k) in enumerate(calls)]
    for p in procs:
        p.start()
    out: dict[int, tuple[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(out) < len(procs) and time.monotonic() < deadline:
        try:
            index, status, value = results.get(timeout=1)
            out[index] = (status, value)
        except Exception:  # noqa: BLE001 - queue.Empty; check the children are alive
            if all(not p.is_alive() for p in procs) and results.empty():
                break
    for p in procs:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
    return [out.get(i, ("died", f"exit code {procs[i].exitcode}")) for i in range(len(procs))]


def run_and_kill(target: str, args: tuple = (), kwargs: dict | None = None, *, after: float | None = None,
                 failpoint: str | None = None, timeout: float = 120) -> int | None:
    """Run `target` in a child and SIGKILL it: after `after` seconds, or when it reaches the
    failpoint named `failpoint` (include/lakehouse/failpoints.py). Returns the child's exit code
    (-9 when killed, 0 when it finished before the window)."""
    from include.lakehouse import failpoints

    env = dict(os.environ)
    flag = None
    if failpoint:
        flag = Path(env.get("TMPDIR", "/tmp")) / f"lakehouse-kill-{os.getpid()}-{time.monotonic_ns()}"
        env[failpoints.ENV] = f"{failpoint}:{flag}"
    results = _CTX.Queue()
    proc = _CTX.Process(target=_child, args=(target, args, kwargs or {}, env, None, results, 0))
    proc.start()
    deadline = time.monotonic() + timeout
    while proc.is_alive() and time.monotonic() < deadline:
        if (flag is not None and flag.exists()) or (after is not None and time.monotonic() > deadline - timeout + after):
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.join(timeout=30)
    if flag is not None and flag.exists():
        flag.unlink()
    return proc.exitcode


def compact_until(uri: str, app_id: str, version: int, *, timeout: float = 60) -> None:
    """The compaction side of a race (in a child process): compact the table over and over until
    the writer under test has recorded `version` for `app_id`, so every one of its commits races one."""
    from deltalake import DeltaTable

    import include.lakehouse.maintenance.operations as maintenance

    deadline = time.monotonic() + timeout
    while DeltaTable(uri).transaction_version(app_id) != version and time.monotonic() < deadline:
        maintenance.compact(uri, target_size_mb=64)
