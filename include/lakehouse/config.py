"""Where the lakehouse lives, how to reach it, and its configuration files.

Owns LAKEHOUSE_ROOT resolution (a local folder or an s3:// / abfss:// / gs:// URI), the
storage options delta-rs needs for object stores, the local state folders, and loading the
YAML configuration (sources.yaml here; tables.yaml through tables.registry) with its pydantic
models (config_files.py) into one-line ConfigErrors.
Never opens a table or a connection at import (DAG files import this at parse time) and never
builds a table path (that is tables.registry's job). Imports Airflow in one place only:
`storage_options`, at run time, when LAKEHOUSE_STORAGE_CONN_ID names an Airflow connection.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from include.lakehouse.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOCAL_STATE = PROJECT_ROOT / ".local"
SOURCES_FILE = Path(__file__).with_name("sources.yaml")


def lakehouse_root() -> str:
    """LAKEHOUSE_ROOT, default `.local/lakehouse`; relative paths are taken from the project root."""
    root = os.environ.get("LAKEHOUSE_ROOT") or str(LOCAL_STATE / "lakehouse")
    if "://" in root:
        return root.rstrip("/")
    path = Path(root)
    if not path.is_absolute():
        path = PROJECT_ROOT / path
    return str(path)


def local_dir(name: str) -> Path:
    """A folder for local state (dbt's DuckDB file, GX results, MLflow store, reports) next to a
    local LAKEHOUSE_ROOT, else under .local when the lakehouse is remote."""
    root = lakehouse_root()
    return (Path(root).parent if "://" not in root else LOCAL_STATE) / name


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def storage_options() -> dict[str, str] | None:
    """delta-rs storage options for a remote LAKEHOUSE_ROOT.

    Taken from LAKEHOUSE_STORAGE_OPTIONS (a JSON object) or, inside Airflow, from the
    connection named by LAKEHOUSE_STORAGE_CONN_ID (AWS-style login/password plus extras).
    """
    raw = os.environ.get("LAKEHOUSE_STORAGE_OPTIONS")
    if raw:
        return {str(k): str(v) for k, v in json.loads(raw).items()}
    conn_id = os.environ.get("LAKEHOUSE_STORAGE_CONN_ID")
    if not conn_id or not is_remote(lakehouse_root()):
        return None
    from airflow.sdk import BaseHook  # only at run time, never at parse time

    conn = BaseHook.get_connection(conn_id)
    options = {str(k): str(v) for k, v in (conn.extra_dejson or {}).items()}
    if conn.login:
        options.setdefault("AWS_ACCESS_KEY_ID", conn.login)
    if conn.password:
        options.setdefault("AWS_SECRET_ACCESS_KEY", conn.password)
    return options


def _yaml(path: Path) -> dict:
    import yaml

    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.name}: not valid YAML: {exc}".replace("\n", " ")) from None
    if doc is not None and not isinstance(doc, dict):
        raise ConfigError(f"{path.name}: the top level must be a mapping, got {type(doc).__name__}")
    return doc or {}


def _validate(model, doc: dict, path: Path):
    """Validate a YAML document with its pydantic model; ConfigError names file, key and problem
    on one line (as dbt does for a schema.yml typo)."""
    from pydantic import ValidationError

    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "(top level)"
            problems.append(f"{where}: {error['msg']}")
        raise ConfigError(f"{path.name}: {'; '.join(problems)}") from None


@lru_cache(maxsize=4)
def load_sources(path: str | None = None) -> dict:
    """sources.yaml, validated: landing-file contracts (files), Kafka topics, CDC tables,
    dimensions. Returned as plain dicts (defaults filled in) for the stage modules."""
    from include.lakehouse.config_files import SourcesFile

    file = Path(path or SOURCES_FILE)
    return _validate(SourcesFile, _yaml(file), file).model_dump()
