"""
### alert_canary

On-call's self-test of the alert path, to run after every deploy (`make canary`, or trigger
it in the UI): one task holds the run past the canary's short tiered deadline (warning at
15 s, critical at 30 s: the triggerer must deliver both), another fails on purpose on every
try (retried twice like every task; exactly one failure alert must arrive, with try 3).
Set `fail` / `hold_seconds` to check one path only. Alerts go where plugins/lakehouse_airflow/alerting.yaml routes `alert_canary`.
Never scheduled; `make demo` leaves it alone.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, task

from lakehouse_airflow.defaults import dag_args


@dag(**dag_args("alert_canary", doc_md=__doc__, tags=["ops", "canary"],
                params={"hold_seconds": Param(45, type="integer", minimum=0, description="outlive the deadline"),
                        "fail": Param(True, type="boolean", description="fail a task on every try")}))
def alert_canary():
    @task
    def outlive_the_deadline(params=None):
        import time

        time.sleep(int(params["hold_seconds"]))
        return {"held_seconds": int(params["hold_seconds"])}

    @task(retries=2, retry_delay=timedelta(seconds=1), retry_exponential_backoff=False)
    def fail_on_purpose(params=None, ti=None):
        if params["fail"]:
            raise RuntimeError(f"alert canary: deliberate failure (try {ti.try_number})")
        return {"failed": False}

    outlive_the_deadline()
    fail_on_purpose()


alert_canary()
