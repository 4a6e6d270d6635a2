"""Local Airflow without Docker: `make demo`, `make canary` and `make ui` (`python -m scripts.local_airflow
demo|canary|ui|init`).

`demo` starts the real components (api-server, scheduler, dag-processor, triggerer, the embedded
Kafka broker, a warm Spark Connect server), discovers the project's DAGs and their asset
dependencies, starts the root DAGs the way production would and lets the scheduler's asset
triggers run the rest, all through Airflow's public REST API (`/api/v2`); then prints a summary.
Nothing in here knows the DAG ids: a new DAG joins the demo by existing, and a DAG tagged
`week:<topic>` has its share of the demo's time reported under that topic (untagged: "core").

Modules: settings (environment, preflight, airflow_settings.yaml), components (the process
supervisor), api (the REST client), graph (DAG discovery and ordering), runner (the demo run),
summary (the printed report), canary (`make canary`), ui (`make ui`).
"""
