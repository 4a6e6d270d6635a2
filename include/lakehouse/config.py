"""Where the lakehouse lives and how to reach it.

Owns LAKEHOUSE_ROOT resolution (a local folder or an s3:// / abfss:// / gs:// URI), the
storage options delta-rs needs for object stores, and the table registry in tables.yaml.
Never opens a table or a connection at import: DAG files import this at parse time.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from include.lakehouse.config_files import LAYERS  # noqa: F401 - re-exported
from include.lakehouse.errors import ConfigError, UnknownTableError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOCAL_STATE = PROJECT_ROOT / ".local"
REGISTRY_FILE = Path(__file__).with_name("tables.yaml")
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


def checkpoint_location(query_name: str) -> str:
    """Where a streaming query keeps its checkpoint: with the lakehouse, next to the tables whose
    positions it holds (`<LAKEHOUSE_ROOT>/_checkpoints/<query name>`)."""
    return f"{lakehouse_root()}/_checkpoints/{query_name}"


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


@dataclass(frozen=True)
class MaintenancePolicy:
    target_file_size_mb: int = 128
    z_order_by: tuple[str, ...] = ()
    vacuum_retention_hours: int = 168
    checkpoint: bool = True


@dataclass(frozen=True)
class TableSpec:
    """One registered table: `<layer>/<name>` under LAKEHOUSE_ROOT."""

    name: str
    layer: str
    partition_by: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    sequence_column: str | None = None
    change_data_feed: bool = False
    description: str = ""
    maintenance: MaintenancePolicy = field(default_factory=MaintenancePolicy)

    @property
    def uri(self) -> str:
        return f"{lakehouse_root()}/{self.name}"

    @property
    def configuration(self) -> dict[str, str]:
        """Delta table properties to set when the table is created."""
        conf = {"delta.checkpointInterval": "10"}
        if self.change_data_feed:
            conf["delta.enableChangeDataFeed"] = "true"
        return conf


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
def load_registry(path: str | None = None, sources_path: str | None = None) -> dict[str, TableSpec]:
    """Read and validate tables.yaml into {"<layer>/<name>": TableSpec}.

    Names may be patterns (`quarantine/*`): get_table matches them. The tables that
    sources.yaml implies (bronze/<topic>, bronze/<file source>, silver/<cdc table>,
    gold/<dimension>) are registered from it unless tables.yaml lists them itself, so a source
    declared once gets its tables, Assets and maintenance with no other edit.
    """
    from include.lakehouse.config_files import RegistryFile

    file = Path(path or REGISTRY_FILE)
    doc = _validate(RegistryFile, _yaml(file), file)
    defaults = doc.defaults.maintenance.model_dump(exclude_unset=True)

    def spec_for(name: str, *, partition_by=(), keys=(), sequence_column=None, change_data_feed=False,
                 description="", maintenance: dict | None = None) -> TableSpec:
        policy = {**defaults, **(maintenance or {})}
        policy["z_order_by"] = tuple(policy.get("z_order_by") or ())
        return TableSpec(name=name, layer=name.split("/", 1)[0], partition_by=tuple(partition_by), keys=tuple(keys),
                         sequence_column=sequence_column, change_data_feed=change_data_feed,
                         description=description, maintenance=MaintenancePolicy(**policy))

    registry: dict[str, TableSpec] = {}
    for name, spec in doc.tables.items():
        registry[name] = spec_for(
            name, partition_by=spec.partition_by, keys=spec.keys, sequence_column=spec.sequence_column,
            change_data_feed=spec.change_data_feed, description=spec.description,
            maintenance=spec.maintenance.model_dump(exclude_unset=True) if spec.maintenance else None)
    sources = load_sources(sources_path)
    cdc_topics = {c["topic"] for c in sources["cdc"].values()}
    implied = {f"bronze/{topic}": dict(change_data_feed=topic in cdc_topics,
                                       description=f"Messages of Kafka topic {topic}, as received.")
               for topic in sources["topics"]}
    implied.update({f"bronze/{source}": dict(description=f"Rows of the {source} landing files, one commit per file.")
                    for source in sources["files"]})
    implied.update({f"silver/{name}": dict(keys=c["keys"], change_data_feed=True,
                                           description=f"Current state of {c['topic']} (CDC).")
                    for name, c in sources["cdc"].items()})
    implied.update({f"gold/{name}": dict(keys=[d["surrogate_key"]],
                                         description=f"Type 2 history of silver/{d['source']}.")
                    for name, d in sources["dimensions"].items()})
    for name, settings in implied.items():
        registry.setdefault(name, spec_for(name, **settings))
    return registry


def _pattern_match(name: str, registry: dict[str, TableSpec]) -> TableSpec | None:
    from fnmatch import fnmatchcase

    for pattern, spec in registry.items():
        if "*" in pattern and fnmatchcase(name, pattern):
            return TableSpec(name=name, layer=spec.layer, partition_by=spec.partition_by, keys=spec.keys,
                             sequence_column=spec.sequence_column, change_data_feed=spec.change_data_feed,
                             description=spec.description, maintenance=spec.maintenance)
    return None


def registered_tables() -> list[str]:
    """Every table the lakehouse maintains: the registry's names, and the tables on disk that
    its patterns (`quarantine/*`) match (listed for a local LAKEHOUSE_ROOT)."""
    registry = load_registry()
    names = {n for n in registry if "*" not in n}
    root = lakehouse_root()
    if "://" not in root:
        for layer in LAYERS:
            folder = Path(root) / layer
            if folder.is_dir():
                names.update(f"{layer}/{d.name}" for d in folder.iterdir()
                             if (d / "_delta_log").is_dir() and _pattern_match(f"{layer}/{d.name}", registry))
    return sorted(names)


@lru_cache(maxsize=4)
def load_sources(path: str | None = None) -> dict:
    """sources.yaml, validated: landing-file contracts (files), Kafka topics, CDC tables,
    dimensions. Returned as plain dicts (defaults filled in) for the stage modules."""
    from include.lakehouse.config_files import SourcesFile

    file = Path(path or SOURCES_FILE)
    return _validate(SourcesFile, _yaml(file), file).model_dump()


def get_table(name: str) -> TableSpec:
    """The registered spec of a table name (exact, or matched by a pattern like `quarantine/*`)."""
    registry = load_registry()
    if name in registry and "*" not in name:
        return registry[name]
    matched = _pattern_match(name, registry)
    if matched is None:
        raise UnknownTableError(name, [n for n in registry if "*" not in n])
    return matched


def table_ref(name: str) -> str:
    """The registry name when the table is registered (by name or pattern), else its path under
    LAKEHOUSE_ROOT (an unconfigured topic a user ingests by hand): writes then take the
    registered configuration whenever there is one."""
    try:
        get_table(name)
        return name
    except UnknownTableError:
        return f"{lakehouse_root()}/{name}"


def is_path(ref: str) -> bool:
    """A table reference is a path/URI (used as is) rather than a registry name."""
    return "://" in ref or ref.startswith(("/", "./", "../")) or os.path.isabs(ref)


def resolve(table: "str | TableSpec") -> tuple[str, TableSpec | None]:
    """Return (uri, spec) for a registry name, a TableSpec, or a raw path/URI (spec None)."""
    if isinstance(table, TableSpec):
        return table.uri, table
    if is_path(table):
        return table, None
    spec = get_table(table)
    return spec.uri, spec
