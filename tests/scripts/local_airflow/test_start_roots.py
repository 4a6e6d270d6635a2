"""The demo's roots start together: every root DAG is unpaused before the runner waits for the
runs their due schedules create (it used to unpause and wait one DAG at a time, so the loop's
source DAG started seconds after the first smoke DAG), and a due DAG is never triggered too."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

from scripts.local_airflow import runner
from scripts.local_airflow.graph import DagInfo


class FakeAPI:
    """Due DAGs get their scheduled run one 'scheduler loop' after they are unpaused."""

    def __init__(self, due: set[str], yesterday: set[str] = frozenset()):
        self.due, self.calls, self.unpaused_at, self.lock = due | yesterday, [], {}, threading.Lock()
        self.yesterday = yesterday
        self.since = datetime.now(timezone.utc) - timedelta(seconds=1)

    def dag(self, dag_id):
        today = self.since.replace(hour=0, minute=0, second=0, microsecond=0)
        past = max(self.since - timedelta(hours=1), today) if dag_id not in self.yesterday else today - timedelta(hours=19)
        return {"next_dagrun_run_after": past.isoformat() if dag_id in self.due else None}

    def set_paused(self, dag_id, paused):
        with self.lock:
            self.calls.append(("unpause", dag_id))
            self.unpaused_at[dag_id] = datetime.now(timezone.utc)

    def runs(self, dag_id="~", updated_since=None):
        with self.lock:
            self.calls.append(("runs", dag_id))
        now = datetime.now(timezone.utc)
        return [{"dag_id": d, "dag_run_id": f"scheduled__{d}", "state": "queued", "run_after": now.isoformat(),
                 "queued_at": now.isoformat(), "start_date": None, "end_date": None}
                for d, at in self.unpaused_at.items() if d in self.due and now - at > timedelta(seconds=0.3)]

    def trigger(self, dag_id, run_id, logical_date, conf=None):
        with self.lock:
            self.calls.append(("trigger", dag_id))
        return {}


def test_roots_are_unpaused_together_and_due_ones_not_triggered(monkeypatch):
    api = FakeAPI(due={"smoke", "source"})
    infos = [DagInfo("smoke", "time"), DagInfo("source", "time"), DagInfo("manual", "none")]
    how = runner.start_roots(api, infos, api.since)
    assert how == {"smoke": "scheduled (unpaused)", "source": "scheduled (unpaused)", "manual": "triggered"}
    first_wait = next(i for i, c in enumerate(api.calls) if c[0] == "runs")
    assert {d for kind, d in api.calls[:first_wait] if kind == "unpause"} == {"smoke", "source", "manual"}
    assert [d for kind, d in api.calls if kind == "trigger"] == ["manual"]


def test_quiet_counts_from_the_last_run_s_end_not_from_when_the_runner_looked():
    """The demo's phase ends SETTLE seconds after its last run ended: counted from the runner's
    first look at the ended runs, each phase and ops DAG waited up to a poll more."""
    now = datetime.now(timezone.utc)
    since = now - timedelta(minutes=5)
    ended = [{"state": "success", "end_date": (now - timedelta(seconds=s)).isoformat()} for s in (40, 9)]
    assert abs(runner.quiet_since(ended, since) - (now - timedelta(seconds=9)).timestamp()) < 0.01
    assert runner.quiet_since(ended + [{"state": "running", "end_date": None}], since) is None
    assert runner.quiet_since([], since) == since.timestamp()


def test_a_look_lists_the_tasks_of_the_active_runs_not_of_the_whole_demo():
    from datetime import datetime, timedelta, timezone

    from scripts.local_airflow.runner import active_since

    since = datetime(2026, 1, 1, tzinfo=timezone.utc)
    at = lambda minutes: (since + timedelta(minutes=minutes)).isoformat()  # noqa: E731
    runs = [{"state": "success", "queued_at": at(1)}, {"state": "running", "queued_at": at(10)},
            {"state": "queued", "queued_at": at(12)}]
    assert active_since(runs, since) == since + timedelta(minutes=9)  # a minute before the oldest active run
    assert active_since(runs[:1], since) == since  # none active
    assert active_since([{"state": "running", "queued_at": at(0.5)}], since) == since  # never before the demo


def test_a_dag_due_for_yesterday_also_runs_for_today():
    """Between midnight and 05:00 UTC, evaluate_models' due run (daily 05:00) is yesterday's: run
    alone, it judged yesterday and found no matured label of today's models (the demo test failed
    at 00:10 UTC). It still runs (unpausing starts it) and the DAG is triggered for today too."""
    api = FakeAPI(due={"smoke"}, yesterday={"evaluate"})
    how = runner.start_roots(api, [DagInfo("smoke", "time"), DagInfo("evaluate", "time")], api.since)
    assert how["smoke"] == "scheduled (unpaused)"
    assert how["evaluate"].startswith("scheduled (unpaused) for ") and how["evaluate"].endswith("triggered for today")
    assert [d for kind, d in api.calls if kind == "trigger"] == ["evaluate"]


class QuietAPI:
    """Every run ended a moment ago; `queued` asset events per DAG; `appears`: a run the scheduler
    creates between the runner's two listings."""

    def __init__(self, queued: dict[str, int] | None = None, appears: bool = False):
        self.queued, self.appears, self.listings = queued or {}, appears, 0
        self.ended = (datetime.now(timezone.utc) - timedelta(seconds=0.2)).isoformat()

    def runs(self, dag_id="~", updated_since=None):
        self.listings += 1
        runs = [{"dag_id": "a", "dag_run_id": "r1", "state": "success", "end_date": self.ended}]
        if self.appears and self.listings > 1:
            runs.append({"dag_id": "b", "dag_run_id": "r2", "state": "queued", "end_date": None})
        return runs

    def queued_asset_events(self, dag_id):
        return self.queued.get(dag_id, 0)


class Alive:
    def check_alive(self):
        pass


def _settled(api: QuietAPI) -> bool:
    dags = {"a": DagInfo("a", "time"), "b": DagInfo("b", "asset", upstream={"a"})}
    watch = runner.Watch(api, dags, Alive(), datetime.now(timezone.utc) - timedelta(minutes=1))
    watch.look([])
    return watch.settled()


def test_a_phase_ends_at_once_when_no_run_is_active_or_coming():
    """The runner waited SETTLE seconds after the last run of each phase and ops DAG (three times
    in the loop and its ops) although nothing could start: no asset event queued, no new run."""
    assert _settled(QuietAPI())  # well before SETTLE has passed


def test_a_queued_asset_event_or_a_new_run_keeps_the_phase_open():
    assert not _settled(QuietAPI(queued={"b": 1}))  # a run of b is coming (or half of an AND: SETTLE decides)
    assert not _settled(QuietAPI(appears=True))  # the scheduler turned a queue into a run meanwhile
