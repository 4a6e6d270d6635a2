"""`make ui`: `airflow standalone` on the project's DAGs and settings, with the embedded Kafka
broker and the warm Spark Connect server the DAGs expect; runs until Ctrl-C."""

from __future__ import annotations

import time

from scripts import localenv
from scripts.local_airflow.components import Components, http_ok, start_kafka, start_spark_engine, wait_for
from scripts.local_airflow.settings import prepare


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
