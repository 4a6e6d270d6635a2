"""Local Airflow without Docker: `make demo` and `make ui` call this script.

    python scripts/local_airflow.py demo   # init, start Airflow, run every DAG once, summary
    python scripts/local_airflow.py ui     # airflow standalone on the project's DAGs
    python scripts/local_airflow.py init   # migrate the metadata DB, load airflow_settings.yaml

`demo` starts the real components (api-server, scheduler, dag-processor, triggerer) and a
warm Spark Connect server (Sail by default: scripts/spark_engine.py), discovers the
project's DAGs and their asset dependencies, and runs them in dependency order: root DAGs are started (a time-scheduled DAG by
unpausing it, as in production, or by a manual trigger when its latest interval already
ran), asset-scheduled DAGs are left to the scheduler's asset triggers. Nothing in here
knows the DAG ids: new DAGs join the demo by existing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from include.lakehouse.redaction import redact_url  # noqa: E402
from scripts import localenv  # noqa: E402

ROOT = localenv.ROOT
SPARK_CONNECT_PORT = int(os.environ.get("LAKEHOUSE_SPARK_CONNECT_PORT", 15002))
KAFKA_PORT = int(os.environ.get("LAKEHOUSE_KAFKA_PORT", 19092))
DAG_TIMEOUT = int(os.environ.get("DEMO_DAG_TIMEOUT", 1200))


class DemoError(RuntimeError):
    """A problem the user must fix; printed as one line, without a traceback."""


def say(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


# --------------------------------------------------------------------------- preflight
def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


PORT_SETTINGS = {"Airflow API": "LAKEHOUSE_AIRFLOW_PORT", "Spark Connect": "LAKEHOUSE_SPARK_CONNECT_PORT",
                 "Kafka": "LAKEHOUSE_KAFKA_PORT"}


def preflight(env: dict[str, str], ports: dict[str, int]) -> None:
    if not env.get("JAVA_HOME") or not Path(env["JAVA_HOME"], "bin", "java").exists():
        raise DemoError("Java not found: install Java 17 (e.g. `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME")
    for name, port in ports.items():
        if not port_free(port):
            raise DemoError(
                f"port {port} ({name}) is already in use: stop what uses it (`lsof -i :{port}`) or set "
                f"{PORT_SETTINGS[name]}=<free port>"
            )
    db = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    if db.exists():
        try:
            with sqlite3.connect(db) as con:
                ok = con.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            ok = str(exc)
        if ok != "ok":
            raise DemoError(f"the local Airflow DB {db} is corrupt ({ok}): run `make reset` to start clean "
                            f"(deletes .local/) or delete that file")


def run_quiet(cmd: list[str], env: dict[str, str], what: str, log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        code = subprocess.call(cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    if code != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise DemoError(f"{what} failed (exit {code}); last lines of {log}:\n{tail}")


# --------------------------------------------------------------------------- settings
def load_settings(path: Path = ROOT / "airflow_settings.yaml") -> dict[str, int]:
    """Load the connections, pools and variables of airflow_settings.yaml into the metadata DB."""
    import yaml
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session

    doc = (yaml.safe_load(path.read_text()) or {}).get("airflow", {})
    counts = {"connections": 0, "pools": 0, "variables": 0}
    with create_session() as session:
        for c in doc.get("connections") or []:
            extra = c.get("conn_extra")
            session.query(Connection).filter(Connection.conn_id == c["conn_id"]).delete()
            session.add(Connection(
                conn_id=c["conn_id"], conn_type=c["conn_type"], host=c.get("conn_host"), schema=c.get("conn_schema"),
                login=c.get("conn_login"), password=c.get("conn_password"), port=c.get("conn_port"),
                extra=json.dumps(extra) if isinstance(extra, dict) else extra,
            ))
            counts["connections"] += 1
        for p in doc.get("pools") or []:
            Pool.create_or_update_pool(p["pool_name"], int(p["pool_slot"]), p.get("pool_description") or "",
                                       include_deferred=False, session=session)
            counts["pools"] += 1
    for v in doc.get("variables") or []:
        Variable.set(v["variable_name"], v["variable_value"])
        counts["variables"] += 1
    return counts


def init(env: dict[str, str]) -> None:
    logs = Path(env["AIRFLOW_HOME"]) / "logs" / "components"
    say("migrating the Airflow metadata DB (SQLite) ...")
    run_quiet([str(localenv.VENV_BIN / "airflow"), "db", "migrate"], env, "airflow db migrate", logs / "db-migrate.log")
    localenv.apply(env)
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"  # this process only: keep the demo output readable
    counts = load_settings()
    say(f"loaded airflow_settings.yaml: {counts['connections']} connections, {counts['pools']} pools, "
        f"{counts['variables']} variables")


# --------------------------------------------------------------------------- processes
def _die_with_parent() -> None:
    """Linux: the component gets SIGTERM if this runner dies without cleaning up."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Components:
    """Background processes, each in its own process group, stopped together."""

    def __init__(self, env: dict[str, str]):
        self.env = {**os.environ, **env}
        self.logs = Path(env["AIRFLOW_HOME"]) / "logs" / "components"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, cmd: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None) -> None:
        """Start `cmd` as component `name` (`env`, when given, replaces the shared environment:
        the Astro emulation gives each component its own container's)."""
        out = (self.logs / f"{name}.log").open("a")
        self.procs[name] = subprocess.Popen(cmd, env=env or self.env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                                            start_new_session=True, preexec_fn=_die_with_parent)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = "\n".join((self.logs / f"{name}.log").read_text().splitlines()[-15:])
                raise DemoError(f"{name} exited with code {proc.returncode}; see {self.logs / (name + '.log')}:\n{tail}")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.time() + 20
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def start_spark_engine(components: "Components") -> str:
    """The chosen local Spark Connect engine (scripts/spark_engine.py: Sail unless
    LAKEHOUSE_SPARK_ENGINE=jvm), started and awaited; returns the engine's name."""
    from scripts import spark_engine

    engine = spark_engine.chosen_engine()
    components.procs["spark-connect"] = spark_engine.start(
        engine, SPARK_CONNECT_PORT, components.logs / "spark-connect.log", env=components.env,
        preexec_fn=_die_with_parent)
    return engine


def wait_for(check, what: str, timeout: float, components: Components | None = None, every: float = 1.0):
    end = time.time() + timeout
    while time.time() < end:
        if components:
            components.check_alive()
        result = check()
        if result:
            return result
        time.sleep(every)
    raise DemoError(f"timed out after {timeout:.0f}s waiting for {what}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except Exception:
        return False


def tcp_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --------------------------------------------------------------------------- DAG graph
@dataclass
class DagInfo:
    dag_id: str
    kind: str  # "time", "none" or "asset"
    consumes: set[str] = field(default_factory=set)
    produces: set[str] = field(default_factory=set)
    upstream: set[str] = field(default_factory=set)
    demo_conf: dict | None = None
    ops: bool = False  # tagged "ops": acts on what the pipeline DAGs wrote, so it runs after them


def _asset_names(condition) -> set[str]:
    names: set[str] = set()
    stack = [condition]
    while stack:
        item = stack.pop()
        if hasattr(item, "objects"):
            stack.extend(item.objects)
        elif getattr(item, "name", None):
            names.add(item.name)
    return names


def discover_dags() -> dict[str, DagInfo]:
    """Parse the DAG folder and derive each DAG's asset dependencies."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(ROOT / "dags"))
    if bag.import_errors:
        first = next(iter(bag.import_errors.items()))
        raise DemoError(f"{len(bag.import_errors)} DAG file(s) fail to import; first: {first[0]}:\n{first[1]}")
    dags: dict[str, DagInfo] = {}
    for dag in bag.dags.values():
        condition = getattr(dag.timetable, "asset_condition", None)
        if condition is not None:
            kind = "asset"
        elif type(dag.timetable).__name__ == "NullTimetable":
            kind = "none"
        else:
            kind = "time"
        info = DagInfo(dag.dag_id, kind, consumes=_asset_names(condition) if condition is not None else set())
        for task in dag.tasks:
            info.produces |= {a.name for a in (task.outlets or []) if getattr(a, "name", None)}
        info.demo_conf = (dag.params.dump() if hasattr(dag.params, "dump") else None) or None
        info.ops = "ops" in (dag.tags or ())
        if "canary" in (dag.tags or ()):
            continue  # the alert self-test fails on purpose: `make canary` runs it
        dags[dag.dag_id] = info
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


# --------------------------------------------------------------------------- running
@dataclass
class RunRecord:
    dag_id: str
    state: str = "waiting"
    run_ids: list[str] = field(default_factory=list)
    started: datetime | None = None
    ended: datetime | None = None
    note: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    report_lines: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float | None:
        if self.started and self.ended:
            return (self.ended - self.started).total_seconds()
        return None


def set_paused(dag_id: str, paused: bool) -> None:
    from airflow.models import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(DagModel).filter(DagModel.dag_id == dag_id).update({DagModel.is_paused: paused})


def registered_dags(expected: set[str]) -> set[str]:
    from airflow.models import DagModel
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        known = {d for (d,) in session.query(SerializedDagModel.dag_id).filter(SerializedDagModel.dag_id.in_(expected))}
        active = {d for (d,) in session.query(DagModel.dag_id).filter(DagModel.dag_id.in_(known))}
    return active


def runs_since(dag_id: str, since: datetime):
    """All runs of `dag_id` started by this demo, as one status (an asset-scheduled DAG can
    be triggered more than once when its assets update in several steps)."""
    from sqlalchemy import or_

    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = (session.query(DagRun).filter(DagRun.dag_id == dag_id,
                                             or_(DagRun.run_after >= since, DagRun.queued_at >= since))
                .order_by(DagRun.id).all())
        if not runs:
            return None
        states = [str(r.state.value if hasattr(r.state, "value") else r.state) for r in runs]
        tis = [ti for r in runs for ti in r.get_task_instances(session=session)]
        done = sum(1 for ti in tis if ti.state in ("success", "skipped", "failed", "upstream_failed"))
        failed = [ti.task_id for ti in tis if ti.state in ("failed", "upstream_failed")]
        if any(s not in ("success", "failed") for s in states):
            state = next(s for s in states if s not in ("success", "failed"))
        else:
            state = "failed" if "failed" in states else "success"
        ends = [r.end_date for r in runs if r.end_date]
        return {"run_ids": [r.run_id for r in runs], "state": state,
                "start": min((r.start_date for r in runs if r.start_date), default=None),
                "end": max(ends) if ends and state in ("success", "failed") else None,
                "done": done, "total": len(tis), "failed": failed}


def start_root(info: DagInfo, since: datetime) -> str:
    """Start a root DAG the way production would; returns how it was started."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.models import DagModel
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType

    with create_session() as session:
        model = session.get(DagModel, info.dag_id)
        due = model.next_dagrun_create_after
    set_paused(info.dag_id, False)
    if info.kind == "time" and due is not None and due <= datetime.now(timezone.utc):
        return "scheduled (unpaused)"
    trigger_dag(info.dag_id, triggered_by=DagRunTriggeredByType.CLI, logical_date=since,
                run_id=f"demo__{since:%Y%m%dT%H%M%S}", conf=info.demo_conf or {})
    return "triggered"


def xcom_results(dag_id: str, run_id: str) -> tuple[dict[str, int], list[str]]:
    """What the tasks returned, summed for the summary: `rows_*` of OperationResult dicts,
    anything under a "counts" dict, and the lines of any "report_lines" list."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    totals: dict[str, int] = {}
    lines: list[str] = []

    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    def add(value):
        if isinstance(value, dict):
            for key, v in value.items():
                if key.startswith("rows_") and number(v):
                    totals[key.removeprefix("rows_")] = totals.get(key.removeprefix("rows_"), 0) + int(v)
            for key, v in (value.get("counts") or {}).items():
                if number(v):
                    totals[key] = totals.get(key, 0) + int(v)
            lines.extend(str(line) for line in value.get("report_lines") or [])
        elif isinstance(value, list):
            for item in value:
                add(item)

    with create_session() as session:
        for row in session.query(XComModel).filter(XComModel.dag_id == dag_id, XComModel.run_id == run_id,
                                                   XComModel.key == "return_value"):
            value = row.value
            if isinstance(value, (str, bytes)):
                try:
                    value = json.loads(value)
                except ValueError:
                    continue
            add(value)
    return totals, lines


def run_all(dags: dict[str, DagInfo], components: Components) -> list[RunRecord]:
    order = dependency_order(dags)
    records = {d: RunRecord(d) for d in order}
    since = datetime.now(timezone.utc)
    for d in order:
        if dags[d].kind == "asset":
            set_paused(d, False)  # armed: the scheduler triggers it when its assets update
    seen: set[str] = set()
    for d in order:
        info, record = dags[d], records[d]
        # upstreams awaited before this DAG (in a feedback loop the later one comes after it)
        failed_up = [u for u in info.upstream if u in seen and records[u].state != "success"]
        seen.add(d)
        if info.kind == "asset" and (failed_up or not info.upstream):
            record.state = "not run"
            record.note = (f"upstream {', '.join(failed_up)} did not succeed" if failed_up
                           else "waits for assets no project DAG produces")
            say(f"{d}: {record.note}")
            continue
        if info.kind != "asset":
            how = start_root(info, since)
            say(f"{d}: {how}")
        else:
            say(f"{d}: waiting for the scheduler's asset trigger from {', '.join(sorted(info.upstream))}")
        last_line, end = "", time.time() + DAG_TIMEOUT
        appear_by = time.time() + 180  # an asset trigger comes within seconds of its event
        while True:
            components.check_alive()
            status = runs_since(d, since)
            if status is None and info.kind == "asset" and time.time() > appear_by:
                record.state, record.note = "not run", "no asset event triggered it within 180 s"
                break
            if status:
                record.run_ids, record.state = status["run_ids"], status["state"]
                record.started, record.ended = status["start"], status["end"]
                runs = f"{len(status['run_ids'])} runs, " if len(status["run_ids"]) > 1 else ""
                line = f"{d}: {status['state']} ({runs}{status['done']}/{status['total']} tasks done)"
                if line != last_line:
                    say(line)
                    last_line = line
                if status["state"] in ("success", "failed"):
                    if status["failed"]:
                        record.note = "failed tasks: " + ", ".join(status["failed"])
                    break
            if time.time() > end:
                record.state, record.note = "timeout", f"no result after {DAG_TIMEOUT}s"
                break
            time.sleep(2)
        for run_id in record.run_ids:
            counts, lines = xcom_results(d, run_id)
            for key, value in counts.items():
                record.counts[key] = record.counts.get(key, 0) + value
            record.report_lines += lines
    return [records[d] for d in order]


def print_summary(records: list[RunRecord], alerts_before: int, alerts_file: Path) -> None:
    width = max([len(r.dag_id) for r in records] + [3])
    print()
    print(f"{'DAG':<{width}}  {'state':<8}  {'seconds':>7}  key counts")
    print(f"{'-' * width}  {'-' * 8}  {'-' * 7}  {'-' * 40}")
    for r in records:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(r.counts.items()) if v) or "-"
        seconds = f"{r.seconds:.1f}" if r.seconds is not None else "-"
        print(f"{r.dag_id:<{width}}  {r.state:<8}  {seconds:>7}  {counts}{'  (' + r.note + ')' if r.note else ''}")
    for r in records:
        if r.report_lines:
            print(f"\n{r.dag_id} report:")
            for line in r.report_lines:
                print(f"  {line}")
    sent = _read_alerts(alerts_file)[alerts_before:]
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


def prepare() -> tuple[dict[str, str], int]:
    """Check the machine, migrate the DB, load settings; returns the components' env and port.

    The env announces the warm Spark Connect server the caller starts, so local[*] Spark
    tasks use it instead of a cold spark-submit.
    """
    env = localenv.airflow_env()
    port = int(env["AIRFLOW__API__PORT"])
    preflight(env, {"Airflow API": port, "Spark Connect": SPARK_CONNECT_PORT, "Kafka": KAFKA_PORT})
    init(env)
    env["LAKEHOUSE_SPARK_CONNECT_URL"] = f"sc://127.0.0.1:{SPARK_CONNECT_PORT}"
    env.setdefault("LAKEHOUSE_FORMAT_BENCH_ROWS", "20000")  # format_benchmark at demo size (bench: 1M)
    # the embedded broker's port wins over airflow_settings.yaml's kafka_default (env beats the DB)
    env["AIRFLOW_CONN_KAFKA_DEFAULT"] = json.dumps({"conn_type": "kafka", "extra": {
        "bootstrap.servers": f"127.0.0.1:{KAFKA_PORT}", "group.id": "lakehouse"}})
    return env, port


def start_kafka(components: "Components") -> None:
    from scripts import kafka_broker

    components.procs["kafka"] = kafka_broker.start(KAFKA_PORT, components.logs / "kafka.log")


def demo() -> int:
    env, port = prepare()
    dags = discover_dags()
    say(f"found {len(dags)} DAG(s): {', '.join(dependency_order(dags))}")
    components = Components(env)
    airflow = str(localenv.VENV_BIN / "airflow")
    alerts_file = Path(env["LAKEHOUSE_ALERTS_FILE"])
    alerts_before = len(_read_alerts(alerts_file))  # the summary lists what the demo adds
    try:
        say("starting Kafka (embedded), Spark Connect, api-server, scheduler, dag-processor, triggerer ...")
        start_kafka(components)
        say(f"Spark Connect engine: {start_spark_engine(components)} on {env['LAKEHOUSE_SPARK_CONNECT_URL']}")
        components.start("api-server", [airflow, "api-server", "--port", str(port), "--host", "127.0.0.1"])
        components.start("scheduler", [airflow, "scheduler"])
        components.start("dag-processor", [airflow, "dag-processor"])
        components.start("triggerer", [airflow, "triggerer"])
        wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/api/v2/monitor/health"), "the Airflow API", 180, components)
        wait_for(lambda: registered_dags(set(dags)) == set(dags), "the dag-processor to register all DAGs",
                 300, components, every=2)
        say(f"Airflow is up at http://127.0.0.1:{port} (admin/admin); component logs in {components.logs}")
        records = run_all(dags, components)
        for d in dags:  # back to paused-at-creation, so `make ui` does not start runs by itself
            set_paused(d, True)
    finally:
        say("stopping components ...")
        components.stop()
    print_summary(records, alerts_before, alerts_file)
    return 0 if all(r.state == "success" for r in records) else 1


def canary(runs: int = 2, timeout: float = 300) -> int:
    """`make canary`: run alert_canary through a real scheduler + triggerer, re-serialize the DAGs
    between runs (a re-parse must not lose deadlines), and check every run raised its alerts:
    the deadline tiers (warning, critical) and one failure alert of the failing task."""
    env, port = prepare()  # before importing Airflow: it reads its config (DB path) at import
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.utils.types import DagRunTriggeredByType

    components = Components(env)
    airflow = str(localenv.VENV_BIN / "airflow")
    alerts_file = Path(env["LAKEHOUSE_ALERTS_FILE"])
    ok = True
    try:
        for name, cmd in (("api-server", [airflow, "api-server", "--port", str(port), "--host", "127.0.0.1"]),
                          ("scheduler", [airflow, "scheduler"]), ("dag-processor", [airflow, "dag-processor"]),
                          ("triggerer", [airflow, "triggerer"])):
            components.start(name, cmd)
        wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/api/v2/monitor/health"), "the Airflow API", 180, components)
        wait_for(lambda: registered_dags({"alert_canary"}) == {"alert_canary"}, "alert_canary to be registered",
                 300, components, every=2)
        set_paused("alert_canary", False)
        for n in range(runs):
            if n:  # what a deploy does to every DAG: parse and serialize again
                run_quiet([airflow, "dags", "reserialize"], env, "re-serializing the DAGs", components.logs / "reserialize.log")
                say("DAGs re-serialized")
            run_id = f"canary__{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
            trigger_dag("alert_canary", triggered_by=DagRunTriggeredByType.CLI, run_id=run_id,
                        logical_date=datetime.now(timezone.utc))
            say(f"alert_canary: triggered {run_id}")
            wanted = {("deadline_missed", "warning"), ("deadline_missed", "critical"), ("task_failed", "critical")}
            end = time.time() + timeout
            while time.time() < end:
                components.check_alive()
                got = [a for a in _read_alerts(alerts_file) if a.get("run_id") == run_id]
                if wanted <= {(a["kind"], a.get("severity")) for a in got}:
                    break
                time.sleep(2)
            failures = [a for a in got if a["kind"] == "task_failed"]
            for a in got:
                say(f"  {a['kind']} [{a.get('severity')}] -> {', '.join(a.get('channels', []))}: {a['summary'][:100]}")
            missing = wanted - {(a["kind"], a.get("severity")) for a in got}
            if missing or len(failures) != 1:
                ok = False
                say(f"alert_canary {run_id}: MISSING {sorted(missing)}; failure alerts: {len(failures)} (want 1)")
            else:
                say(f"alert_canary {run_id}: every alert arrived")
    finally:
        components.stop()
    return 0 if ok else 1


def _read_alerts(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def ui() -> int:
    env, port = prepare()
    components = Components(env)
    try:
        start_kafka(components)
        engine = start_spark_engine(components)
        components.start("standalone", [str(localenv.VENV_BIN / "airflow"), "standalone"])
        wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/api/v2/monitor/health"), "the Airflow UI", 180, components)
        print(f"\n  Airflow UI: http://127.0.0.1:{port}   login: admin / admin\n"
              f"  Spark Connect ({engine}): {env['LAKEHOUSE_SPARK_CONNECT_URL']}\n"
              f"  logs: {components.logs}   stop: Ctrl-C\n", flush=True)
        while True:
            components.check_alive()
            time.sleep(2)
    except KeyboardInterrupt:
        return 0
    finally:
        components.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["demo", "ui", "init", "canary"])
    args = parser.parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):  # stop the components on kill/hang-up, as on Ctrl-C
        signal.signal(sig, lambda *_: sys.exit(128 + sig))
    try:
        if args.command == "init":
            init(localenv.airflow_env())
            return 0
        return {"demo": demo, "ui": ui, "canary": canary}[args.command]()
    except DemoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
