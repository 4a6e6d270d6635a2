"""The dbt project under include/dbt: where it is, the environment dbt needs, its manifest,
and publishing its marts from DuckDB back to the lakehouse as Delta tables.

Cosmos renders the project from a manifest built ahead of time (`make` and the Dockerfile run
`build_manifest`), so parsing the DAG never runs dbt. Where the manifest lives is
DBT_MANIFEST_PATH: the Astro image builds it outside the folders `astro dev start` bind-mounts
over the image (dags/, plugins/, include/, tests/), which would hide anything built under
include/; locally it is include/dbt/target/manifest.json. Everything here is cheap to import.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from include.lakehouse.config import lakehouse_root, local_dir
from include.lakehouse.results import OperationResult

PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt"
LOCAL_MANIFEST = PROJECT_DIR / "target" / "manifest.json"
PROFILE = "lakehouse"
MARTS_SCHEMA = "marts"


def marts() -> tuple[str, ...]:
    """The marts published to gold/<name> after a successful run on the local (DuckDB) target:
    the models under models/marts (dbt's own list; each is registered in tables.yaml)."""
    return tuple(sorted(p.stem for p in (PROJECT_DIR / "models" / MARTS_SCHEMA).glob("*.sql")))


def sources() -> tuple[str, ...]:
    """The lakehouse tables dbt reads, `<source>/<table>` as declared in models/staging/_sources.yml."""
    import yaml

    doc = yaml.safe_load((PROJECT_DIR / "models" / "staging" / "_sources.yml").read_text())
    return tuple(f"{source['name']}/{table['name']}" for source in doc["sources"] for table in source["tables"])


def target() -> str:
    """The dbt target: DBT_TARGET (local | spark | databricks), default local."""
    return os.environ.get("DBT_TARGET", "local")


def dbt_executable() -> str | None:
    """dbt from its own virtualenv (DBT_EXECUTABLE_PATH), as Astronomer recommends when an
    adapter's pins clash with Airflow's: dbt-databricks 1.11 needs dbt-spark < 1.11 and
    dbt-spark's PyHive extra needs thrift < 0.23, which the Databricks provider's SQL connector
    does not allow. Unset: dbt runs in process from this environment (local and spark targets)."""
    return os.environ.get("DBT_EXECUTABLE_PATH") or None


def duckdb_path() -> str:
    """DBT_DUCKDB_PATH, else `dbt/lakehouse.duckdb` next to a local LAKEHOUSE_ROOT (else under .local)."""
    if os.environ.get("DBT_DUCKDB_PATH"):
        return os.environ["DBT_DUCKDB_PATH"]
    return str(local_dir("dbt") / "lakehouse.duckdb")


def duckdb_extension_directory() -> str:
    """Where DuckDB installs extensions for this lakehouse (next to the DuckDB file), so two
    checkouts never fight over ~/.duckdb's record of where an extension came from."""
    return str(Path(duckdb_path()).parent / "extensions")


def connect():
    """A DuckDB connection to dbt's database with the same config dbt-duckdb uses."""
    import duckdb

    Path(duckdb_path()).parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(duckdb_path(), config={"extension_directory": duckdb_extension_directory()})


def duckdb_extension_repo() -> str:
    """The folder of DuckDB extensions shipped by the `duckdb-ext-delta` wheel (offline INSTALL)."""
    spec = importlib.util.find_spec("duckdb_ext")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("duckdb-ext-delta is not installed: DuckDB cannot read Delta tables "
                           "(pip install -r requirements.txt)")
    return str(Path(list(spec.submodule_search_locations)[0]) / "extensions")


def dbt_env(dbt_target: str | None = None) -> dict[str, str]:
    """Environment for every dbt invocation (absolute paths: Cosmos runs dbt in a temp copy)."""
    env = {"LAKEHOUSE_ROOT": lakehouse_root(), "DBT_TARGET": dbt_target or target(),
           "DBT_DUCKDB_PATH": duckdb_path(), "DBT_PROFILES_DIR": str(PROJECT_DIR),
           "DUCKDB_EXTENSION_DIRECTORY": duckdb_extension_directory()}
    try:
        env["DUCKDB_EXTENSION_REPO"] = duckdb_extension_repo()
    except RuntimeError:
        pass  # only the local target needs it; dbt says so when it tries to load the extension
    return env


def run_dbt(args: list[str], dbt_target: str | None = None, project_dir: Path = PROJECT_DIR, callbacks=None):
    """Run dbt in process (dbtRunner) with the project's environment; return the dbtRunnerResult.
    `callbacks`: dbt's event callbacks (each gets every event dbt fires)."""
    from dbt.cli.main import dbtRunner

    env = dbt_env(dbt_target)
    Path(env["DBT_DUCKDB_PATH"]).parent.mkdir(parents=True, exist_ok=True)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return dbtRunner(callbacks=callbacks or []).invoke([*args, "--project-dir", str(project_dir),
                                                            "--profiles-dir", str(PROJECT_DIR)])
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def manifest_path() -> Path:
    """The manifest Cosmos renders dbt_transform from: DBT_MANIFEST_PATH, else the local build's."""
    return Path(os.environ.get("DBT_MANIFEST_PATH") or LOCAL_MANIFEST)


def missing_manifest_message(path: Path | None = None) -> str:
    path = path or manifest_path()
    return (f"dbt manifest not found at {path}: dbt_transform has no dbt tasks until it is built. "
            f"Locally run `make` (or `python -m include.lakehouse.transform.dbt_project`); under `astro dev start` "
            f"the Dockerfile builds it into DBT_MANIFEST_PATH: rebuild the image (`astro dev restart`).")


def build_manifest(path: Path | None = None) -> Path:
    """`dbt parse` -> the manifest Cosmos renders the DAG from (default manifest_path()); the
    rest of dbt's target folder (partial parse state, graph) goes next to it.

    Parsed with the `--profile` and `--target` Cosmos passes at run time: dbt keys its partial
    parse state on them (with the CLI vars and its version), so a different command line made
    every dbt_transform run parse the whole project again - twice, for `source freshness` and
    for `build` (~4 s each beside the ML tasks)."""
    path = Path(path or manifest_path())
    result = run_dbt(["parse", "--quiet", "--profile", PROFILE, "--target", "local",
                      "--target-path", str(path.parent.resolve())], dbt_target="local")
    if not result.success or not path.exists():
        raise RuntimeError(f"dbt parse failed: {result.exception or 'see the dbt log above'}")
    return path


def check_sources() -> dict:
    """The tables the dbt sources read exist (else a LakehouseError naming them and who writes
    them); on the local target, the DuckDB file's folder exists. Returns source versions."""
    from include.lakehouse.errors import LakehouseError
    from include.lakehouse.tables.delta import try_open

    versions, missing = {}, []
    for name in sources():
        dt = try_open(name)
        if dt is None:
            missing.append(name)
        else:
            versions[name] = dt.version()
    if missing:
        raise LakehouseError(f"dbt sources {missing} do not exist under {lakehouse_root()} yet: "
                             f"cdc_apply writes silver/*, scd2_dimensions gold/dim_customer; run them first")
    if target() == "local":
        Path(duckdb_path()).parent.mkdir(parents=True, exist_ok=True)
    return {"source_versions": versions}


def publish_marts(names: tuple[str, ...] | None = None) -> list[OperationResult]:
    """Copy the marts dbt built in DuckDB to gold/<mart> Delta tables (full overwrite, one
    commit each), so Spark jobs and other engines read them from the lakehouse."""
    from include.lakehouse.tables.delta import replace

    results = []
    con = connect()
    try:
        for mart in names or marts():
            rows = con.execute(f'SELECT * FROM "{MARTS_SCHEMA}"."{mart}"').fetch_arrow_table()
            results.append(replace(f"gold/{mart}", rows))
    finally:
        con.close()
    return results


if __name__ == "__main__":  # `python -m include.lakehouse.transform.dbt_project` builds the manifest
    print(build_manifest())
