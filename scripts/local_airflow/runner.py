"""`make demo`: run every project DAG once through the real components, driven through the
REST API. Root DAGs start the way production would (a time-scheduled DAG by unpausing it, or by a
manual trigger when its latest interval already ran), all at once; asset-scheduled DAGs are armed
(unpaused) and left to the scheduler's asset triggers. DAGs tagged "ops" (maintenance, restore)
run one after another once the pipeline has settled. The runner only watches: one call lists
every run, and a DAG is done when its awaited upstream DAGs are done, its runs have ended and no
asset event is queued for it."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from threading import Thread

from scripts.local_airflow import summary
from scripts.local_airflow.api import TERMINAL, TI_DONE, TI_FAILED, AirflowAPI
from scripts.local_airflow.components import (
    Components, http_ok, start_airflow, start_kafka, start_launched, start_spark_engine, start_triggerer, wait_for,
)
from scripts.local_airflow.graph import (
    LATER_OPS_PHASE, OPS_PHASE, DagInfo, awaited_upstream, dependency_order, not_from_later_phases, phases, registered_dags,
)
from scripts.local_airflow.settings import DAG_TIMEOUT, init, migrate, prepare, say

POLL = 1.0  # seconds between looks (a look: one listing of the runs and, while one runs, one of the task instances)
QUIET_POLL = 0.25  # ... while no run is active: a look is one listing, and the settle below is what is waited for
SCHEDULED_RUN_WAIT = 20.0  # seconds for the scheduler to create the run a DAG is due when unpaused
SETTLE = 1.5  # ended runs + this long = done, when an asset event is still queued (a half-filled AND)
AND_SETTLE = 30.0  # a half-filled AND keeps an asset event queued: after this long of quiet, not run either
# An asset-scheduled DAG with no run yet is "not run" only once no run of any DAG has been active for
# SETTLE seconds: in a feedback loop (drift_check -> train_model -> drift_check -> batch_inference)
# its trigger may come minutes after the DAGs it awaits have finished.


@dataclass
class RunRecord:
    dag_id: str
    family: str = "core"
    state: str = "waiting"
    run_ids: list[str] = field(default_factory=list)
    started: datetime | None = None
    ended: datetime | None = None
    note: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    report_lines: list[str] = field(default_factory=list)
    final: bool = False

    @property
    def seconds(self) -> float | None:
        if self.started and self.ended:
            return (self.ended - self.started).total_seconds()
        return None


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def runs_since(api: AirflowAPI, dag_id: str, since: datetime, runs: list[dict] | None = None,
               with_tasks: bool = True, tis: list[dict] | None = None) -> dict | None:
    """All runs of `dag_id` started by this demo, as one status (an asset-scheduled DAG can be
    triggered more than once when its assets update in several steps). `runs` / `tis`: listings
    of runs and task instances already fetched (of every DAG) to pick from."""
    runs = [r for r in (runs if runs is not None else api.runs(dag_id)) if r["dag_id"] == dag_id
            and ((_when(r.get("run_after")) or since) >= since or (_when(r.get("queued_at")) or since) >= since)]
    if not runs:
        return None
    states = [r["state"] for r in runs]
    if any(s not in TERMINAL for s in states):
        state = next(s for s in states if s not in TERMINAL)
    else:
        state = "failed" if "failed" in states else "success"
    if not with_tasks:
        tis = []
    elif tis is not None:
        ids = {r["dag_run_id"] for r in runs}
        tis = [ti for ti in tis if ti["dag_id"] == dag_id and ti["dag_run_id"] in ids]
    else:
        tis = [ti for r in runs for ti in api.task_instances(dag_id, r["dag_run_id"])]
    ends = [_when(r["end_date"]) for r in runs if r.get("end_date")]
    return {"run_ids": [r["dag_run_id"] for r in runs], "state": state,
            "start": min((_when(r["start_date"]) for r in runs if r.get("start_date")), default=None),
            "end": max(ends) if ends and state in TERMINAL else None,
            "done": sum(1 for ti in tis if ti["state"] in TI_DONE), "total": len(tis),
            "failed": [ti["task_id"] for ti in tis if ti["state"] in TI_FAILED]}


def start_roots(api: AirflowAPI, infos: list[DagInfo], since: datetime) -> dict[str, str]:
    """Start root DAGs the way production would, all at once; returns how each was started.

    Every DAG is unpaused first (in parallel): a time schedule (also one beside assets, e.g.
    stream_order_events') whose latest interval is due starts a run as soon as its DAG is
    unpaused - a trigger as well would run it twice - so only the others, and a due DAG whose
    run has not appeared within SCHEDULED_RUN_WAIT, are triggered."""
    with ThreadPoolExecutor(8) as pool:
        due_at = dict(zip([i.dag_id for i in infos], pool.map(
            lambda i: _when(api.dag(i.dag_id).get("next_dagrun_run_after")), infos)))
        list(pool.map(lambda i: api.set_paused(i.dag_id, False), infos))
    now = datetime.now(timezone.utc)
    waiting = {d for d, due in due_at.items() if due is not None and due <= now}
    # due for an earlier day (a daily 05:00 schedule between midnight and 05:00 UTC): that run is
    # for yesterday's data, e.g. evaluate_models would judge no label of today's models - the DAG
    # also runs for today, as a manual trigger does
    behind = {d for d in waiting if due_at[d].date() < since.date()}
    how = {}
    unpaused = time.time()  # the scheduler creates the due runs within a loop or two
    while waiting and time.time() - unpaused < SCHEDULED_RUN_WAIT:
        runs = api.runs(updated_since=since)
        for d in [d for d in waiting if runs_since(api, d, since, runs, with_tasks=False) is not None]:
            how[d] = "scheduled (unpaused)"
            waiting.discard(d)
        if waiting:
            time.sleep(0.5)
    for info in infos:
        if info.dag_id not in how or info.dag_id in behind:
            api.trigger(info.dag_id, run_id=f"demo__{since:%Y%m%dT%H%M%S}", logical_date=since, conf=info.demo_conf)
            how[info.dag_id] = f"{how[info.dag_id]} for {due_at[info.dag_id]:%Y-%m-%d}, triggered for today" \
                if info.dag_id in how else "triggered"
    return how


def start_root(api: AirflowAPI, info: DagInfo, since: datetime) -> str:
    """Start one root DAG (start_roots); returns how it was started."""
    return start_roots(api, [info], since)[info.dag_id]


def quiet_since(runs: list[dict], since: datetime) -> float | None:
    """Since when (epoch seconds) no run of `runs` has been queued or running: the newest end of
    a run (not when the runner first saw them all ended, a poll and more later); None while one is."""
    if any(r["state"] not in TERMINAL for r in runs):
        return None
    ends = [_when(r["end_date"]) for r in runs if r.get("end_date")]
    return max(ends + [since]).timestamp()


def active_since(runs: list[dict], since: datetime) -> datetime:
    """From when the task instances of the active runs can have changed: a minute before the
    oldest active run was queued (its task instances are created with it), not before `since` -
    so a look lists the running runs' tasks, not every task the demo ran so far."""
    queued = [_when(r.get("queued_at")) for r in runs if r["state"] not in TERMINAL and r.get("queued_at")]
    return max(since, min(queued) - timedelta(minutes=1)) if queued else since


class Watch:
    """The demo's view of every DAG's runs, refreshed with one listing per look."""

    def __init__(self, api: AirflowAPI, dags: dict[str, DagInfo], components: Components, since: datetime):
        self.api, self.dags, self.components, self.since = api, dags, components, since
        self.order = dependency_order(dags)
        self.awaited = awaited_upstream(dags, self.order)
        self.records = {d: RunRecord(d, family=dags[d].family) for d in self.order}
        self.lines: dict[str, str] = {}
        self.ready_at: dict[str, float] = {}  # when all awaited upstreams were done
        self.ended_at: dict[str, float] = {}
        self.quiet_since: float | None = None  # since when no run of any DAG is queued or running
        self.run_count = 0  # runs of the demo in the last look

    def look(self, dag_ids: list[str]) -> None:
        """Update and, where done, finalize the records of `dag_ids`."""
        self.components.check_alive()
        runs = self.api.runs(updated_since=self.since)
        now = time.time()
        self.quiet_since, self.run_count = quiet_since(runs, self.since), len(runs)
        tis = None  # fetched once per look, when a DAG's progress is shown
        for d in dag_ids:
            record, info = self.records[d], self.dags[d]
            if record.final or not all(self.records[u].final for u in self.awaited[d]):
                continue
            self.ready_at.setdefault(d, now)
            failed_up = sorted(u for u in self.awaited[d] if self.records[u].state != "success")
            if info.kind == "asset" and (failed_up or not info.upstream):
                self._finish(record, "not run", f"upstream {', '.join(failed_up)} did not succeed" if failed_up
                             else "waits for assets no project DAG produces")
                continue
            status = runs_since(self.api, d, self.since, runs, with_tasks=False)
            if status is None:
                if info.kind == "asset" and self.quiet(now) and (self.quiet(now, AND_SETTLE)
                                                                 or not self.api.queued_asset_events(d)):
                    self._finish(record, "not run", "no asset event triggered it (every other run had ended)")
                elif now - self.ready_at[d] > DAG_TIMEOUT:
                    self._finish(record, "timeout", f"no run after {DAG_TIMEOUT}s")
                continue
            record.run_ids, record.state = status["run_ids"], status["state"]
            record.started, record.ended = status["start"], status["end"]
            ended = status["state"] in TERMINAL
            if not ended:
                self.ended_at.pop(d, None)
                if tis is None:
                    tis = self.api.task_instances("~", "~", updated_since=active_since(runs, self.since))
                self._progress(d, runs, tis)
            elif not self._more_coming(d, now):
                self._finish(record, status["state"])
            elif now - self.ready_at[d] > DAG_TIMEOUT:
                self._finish(record, "timeout", f"no result after {DAG_TIMEOUT}s")

    def quiet(self, now: float, seconds: float = SETTLE) -> bool:
        """No run of any DAG queued or running for `seconds`."""
        return self.quiet_since is not None and now - self.quiet_since >= seconds

    def _more_coming(self, d: str, now: float) -> bool:
        """An asset event queued for `d` is about to start another run (or half of an AND)."""
        self.ended_at.setdefault(d, now)
        if self.dags[d].kind != "asset" or now - self.ended_at[d] > SETTLE:
            return False
        return self.api.queued_asset_events(d) > 0

    def _progress(self, d: str, runs: list[dict], tis: list[dict]) -> None:
        status = runs_since(self.api, d, self.since, runs, tis=tis)
        if status is None:
            return
        runs = f"{len(status['run_ids'])} runs, " if len(status["run_ids"]) > 1 else ""
        line = f"{d}: {status['state']} ({runs}{status['done']}/{status['total']} tasks done)"
        if line != self.lines.get(d):
            say(line)
            self.lines[d] = line

    def _finish(self, record: RunRecord, state: str, note: str = "") -> None:
        record.state, record.final = state, True
        if note:
            record.note = note
        seconds = f" in {record.seconds:.1f} s" if record.seconds is not None else ""
        say(f"{record.dag_id}: {state}{seconds}{' (' + note + ')' if note else ''}")

    def settled(self) -> bool:
        """No run is active and none is coming: no asset event is queued for any DAG (a run
        ends after its tasks' asset events queued the runs they trigger; the scheduler turns a
        queue into a run in one transaction) and, listed again, the runs are the same ended ones
        (a run created meanwhile shows). A queued event (half of an AND) leaves it to SETTLE."""
        if self.quiet_since is None:
            return False
        if self.quiet(time.time()):
            return True
        quiet, count = self.quiet_since, self.run_count
        assets = [d for d, info in self.dags.items() if info.kind == "asset"]
        with ThreadPoolExecutor(8) as pool:
            if any(pool.map(self.api.queued_asset_events, assets)):
                return False
        runs = self.api.runs(updated_since=self.since)
        return quiet_since(runs, self.since) == quiet and len(runs) == count

    def wait(self, dag_ids: list[str]) -> None:
        """Until every DAG of `dag_ids` is done and no run of any DAG is active or coming."""
        while True:
            self.look(dag_ids)
            if all(self.records[d].final for d in dag_ids) and self.settled():
                return
            time.sleep(POLL if self.quiet_since is None else QUIET_POLL)

    def collect(self) -> list[RunRecord]:
        """Final states, failed tasks and the tasks' reports of every run the demo started."""
        for d in self.order:
            record = self.records[d]
            status = runs_since(self.api, d, self.since)
            if status is None:
                continue
            record.run_ids, record.started, record.ended = status["run_ids"], status["start"], status["end"]
            if record.state in ("success", "failed", "waiting") and status["state"] in TERMINAL:
                record.state = status["state"]
            if status["failed"] and not record.note:
                record.note = "failed tasks: " + ", ".join(status["failed"])
            record.counts, record.report_lines = {}, []
            for run_id in record.run_ids:
                counts, lines = summary.sum_results(self.api.return_values(d, run_id))
                for key, value in counts.items():
                    record.counts[key] = record.counts.get(key, 0) + value
                record.report_lines += lines
        return [self.records[d] for d in self.order]


def run_all(api: AirflowAPI, dags: dict[str, DagInfo], components: Components) -> tuple[list[RunRecord], dict[str, float]]:
    """Phase by phase (graph.phases): the lakehouse and ML loop first - its asset-scheduled DAGs
    armed (unpaused), its roots started - then each later week's DAGs, started once the loop has
    settled (armed only then, so an asset update of the loop does not start them early; their
    asset-scheduled DAGs are triggered, as after a deployment), then the ops DAGs one at a time."""
    since = datetime.now(timezone.utc)
    watch = Watch(api, dags, components, since)
    steps = phases(dags, watch.order)
    watch.awaited = not_from_later_phases(watch.awaited, steps)
    seconds: dict[str, float] = {}
    for index, (name, members) in enumerate(steps):
        began = time.time()
        if name in (OPS_PHASE, LATER_OPS_PHASE):
            for d in members:  # ops DAGs act on what the pipeline wrote: one at a time, after it
                say(f"{d}: {start_root(api, dags[d], since)}")
                watch.wait([d])
        else:
            armed = [d for d in members if dags[d].kind == "asset" and index == 0]
            with ThreadPoolExecutor(8) as pool:  # before any root starts: the scheduler triggers them
                list(pool.map(lambda d: api.set_paused(d, False), armed))  # when their assets update
            started = start_roots(api, [dags[d] for d in members if d not in armed], since)
            for d, how in started.items():
                say(f"{d}: {how}")
            if "triggerer" not in components.procs:  # see demo()
                start_triggerer(components)
            watch.wait(members)
        seconds[name] = round(time.time() - began, 1)
        say(f"phase '{name}' done in {seconds[name]:.1f} s")
    return watch.collect(), seconds


def demo() -> int:
    """Start-up overlaps what does not depend on each other: Kafka and Spark Connect start while
    the DB migrates; the settings load while Airflow's components start (DAGs are created paused,
    so nothing runs before the settings are in); the DAGs and their assets are what the
    dag-processor registered (the REST API), not parsed here again."""
    env, port = prepare(load=False)
    # DAG files do not change during a demo: parsed once, not every 30 s (`make ui` keeps the default)
    env.setdefault("AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL", "600")
    components = Components(env)
    alerts_file = Path(env["LAKEHOUSE_ALERTS_FILE"])
    alerts_before = len(summary.read_alerts(alerts_file))  # the summary lists what the demo adds
    api = AirflowAPI(port, password=None)
    started = time.time()
    ready = Path(env["AIRFLOW_HOME"]) / f".db-ready-{os.getpid()}"  # the launched components start on it
    ready.unlink(missing_ok=True)
    try:
        say("starting Kafka (embedded) and Spark Connect; the scheduler and dag-processor preload meanwhile ...")
        start_launched(components, ready)
        with ThreadPoolExecutor(1) as pool:
            migrating = pool.submit(migrate, env, ready)
            start_kafka(components)
            engine = start_spark_engine(components)
            while not ready.exists() and not migrating.done():
                time.sleep(0.05)
            if not ready.exists():
                migrating.result()  # the migration's error
            say("starting the api-server (the scheduler and dag-processor start on the ready DB) ...")
            # the triggerer (~6 CPU-s to start: its own Execution API app) once the first runs are
            # created: on 2 cores it delayed the scheduler's start, and the loop's first deferring
            # task (dbt_transform's sensors) comes ~20 s later (one that defers sooner waits for it)
            start_airflow(components, port, triggerer=False)
            migrating.result()
        init(env, migrated=True)
        say(f"Spark Connect engine: {engine} on {env['LAKEHOUSE_SPARK_CONNECT_URL']}")
        wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/api/v2/monitor/health"), "the Airflow API", 180, components)
        # the Execution API builds its versioned routes on its first request (~3 s on one core):
        # asked now, while the scheduler finishes its preload, not by the first tasks
        Thread(target=http_ok, args=(f"http://127.0.0.1:{port}/execution/health",), daemon=True).start()
        dags = wait_for(lambda: registered_dags(api), "the dag-processor to register a DAG of every file in dags/", 300,
                        components, every=0.5)
        say(f"found {len(dags)} DAG(s): {', '.join(dependency_order(dags))}")
        say(f"Airflow is up at http://127.0.0.1:{port} (admin/admin); component logs in {components.logs}")
        startup = time.time() - started
        records, phase_seconds = run_all(api, dags, components)
        for d in dags:  # back to paused-at-creation, so `make ui` does not start runs by itself
            api.set_paused(d, True)
    finally:
        say("stopping components ...")
        components.stop()
        ready.unlink(missing_ok=True)
    summary.print_summary(records, alerts_before, alerts_file, wall=time.time() - started, phases=phase_seconds,
                          startup=startup)
    return 0 if all(r.state == "success" for r in records) else 1

