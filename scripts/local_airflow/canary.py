"""`make canary`: run alert_canary through a real scheduler + triggerer, re-serialize the DAGs
between runs (a re-parse must not lose deadlines), and check every run raised its alerts: the
deadline tiers (warning, critical) and one failure alert of the failing task."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from scripts import localenv
from scripts.local_airflow.api import AirflowAPI
from scripts.local_airflow.components import Components, http_ok, start_airflow, wait_for
from scripts.local_airflow.settings import prepare, run_quiet, say
from scripts.local_airflow.summary import read_alerts

WANTED = {("deadline_missed", "warning"), ("deadline_missed", "critical"), ("task_failed", "critical")}


def canary(runs: int = 2, timeout: float = 300) -> int:
    env, port = prepare()
    components = Components(env)
    api = AirflowAPI(port)
    alerts_file = Path(env["LAKEHOUSE_ALERTS_FILE"])
    ok = True
    try:
        start_airflow(components, port)
        wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/api/v2/monitor/health"), "the Airflow API", 180, components)
        wait_for(lambda: "alert_canary" in api.dag_ids(), "alert_canary to be registered", 300, components, every=2)
        api.set_paused("alert_canary", False)
        for n in range(runs):
            if n:  # what a deploy does to every DAG: parse and serialize again
                run_quiet([str(localenv.VENV_BIN / "airflow"), "dags", "reserialize"], env, "re-serializing the DAGs",
                          components.logs / "reserialize.log")
                say("DAGs re-serialized")
            now = datetime.now(timezone.utc)
            run_id = f"canary__{now:%Y%m%dT%H%M%S}"
            api.trigger("alert_canary", run_id=run_id, logical_date=now)
            say(f"alert_canary: triggered {run_id}")
            end, got = time.time() + timeout, []
            while time.time() < end:
                components.check_alive()
                got = [a for a in read_alerts(alerts_file) if a.get("run_id") == run_id]
                if WANTED <= {(a["kind"], a.get("severity")) for a in got}:
                    break
                time.sleep(2)
            failures = [a for a in got if a["kind"] == "task_failed"]
            for a in got:
                say(f"  {a['kind']} [{a.get('severity')}] -> {', '.join(a.get('channels', []))}: {a['summary'][:100]}")
            missing = WANTED - {(a["kind"], a.get("severity")) for a in got}
            if missing or len(failures) != 1:
                ok = False
                say(f"alert_canary {run_id}: MISSING {sorted(missing)}; failure alerts: {len(failures)} (want 1)")
            else:
                say(f"alert_canary {run_id}: every alert arrived")
    finally:
        components.stop()
    return 0 if ok else 1
