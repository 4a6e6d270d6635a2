"""The table registry: every table's name, spec and place under LAKEHOUSE_ROOT.

Owns tables.yaml (validated by config_files.RegistryFile), the tables sources.yaml implies
(bronze/<topic>, bronze/<file source>, silver/<cdc table>, gold/<dimension>), pattern entries
(`quarantine/*`, `ops/*`) and resolving a name to its URI: the one place that builds a table
path from LAKEHOUSE_ROOT. Never opens or writes a table (that is tables.delta) and never reads
storage at import: DAG files derive their lists from it at parse time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from include.lakehouse.config import _validate, _yaml, lakehouse_root, load_sources
from include.lakehouse.config_files import LAYERS
from include.lakehouse.errors import UnknownTableError

REGISTRY_FILE = Path(__file__).resolve().parents[1] / "tables.yaml"


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
    engine: str = "delta-rs"  # applies CDC / SCD2: delta-rs or spark (spark/changes.py)
    spark_from_rows: int | None = None

    @property
    def uri(self) -> str:
        return f"{lakehouse_root()}/{self.name}"

    @property
    def configuration(self) -> dict[str, str]:
        """Delta table properties to set when the table is created."""
        # writes (appends, merges) cut files at the size compaction aims for, so a merge rewrites
        # only the files of the keys it touches, not one file holding the whole table
        conf = {"delta.checkpointInterval": "10",
                "delta.targetFileSize": str(self.maintenance.target_file_size_mb * 1024 * 1024)}
        if self.change_data_feed:
            conf["delta.enableChangeDataFeed"] = "true"
        return conf


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
                 description="", maintenance: dict | None = None, engine="delta-rs",
                 spark_from_rows=None) -> TableSpec:
        policy = {**defaults, **(maintenance or {})}
        policy["z_order_by"] = tuple(policy.get("z_order_by") or ())
        return TableSpec(name=name, layer=name.split("/", 1)[0], partition_by=tuple(partition_by), keys=tuple(keys),
                         sequence_column=sequence_column, change_data_feed=change_data_feed,
                         description=description, maintenance=MaintenancePolicy(**policy), engine=engine,
                         spark_from_rows=spark_from_rows)

    registry: dict[str, TableSpec] = {}
    for name, spec in doc.tables.items():
        registry[name] = spec_for(
            name, partition_by=spec.partition_by, keys=spec.keys, sequence_column=spec.sequence_column,
            change_data_feed=spec.change_data_feed, description=spec.description,
            maintenance=spec.maintenance.model_dump(exclude_unset=True) if spec.maintenance else None,
            engine=spec.engine, spark_from_rows=spec.spark_from_rows)
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
                             description=spec.description, maintenance=spec.maintenance, engine=spec.engine,
                             spark_from_rows=spec.spark_from_rows)
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


def table_uri(name: str) -> str:
    """The URI of a table: a path/URI as given, a registered name resolved, an unregistered
    name (a topic ingested by hand) under LAKEHOUSE_ROOT."""
    return name if is_path(name) else resolve(table_ref(name))[0]


def name_of(uri: str) -> str:
    """The registry-style name (`<layer>/<name>`) of a table path under LAKEHOUSE_ROOT, else the path."""
    root = lakehouse_root().rstrip("/")
    plain = uri.removeprefix("file://").rstrip("/")
    return plain[len(root) + 1:] if plain.startswith(root + "/") else plain


def folder(*parts: str) -> str:
    """A location under LAKEHOUSE_ROOT that is not a Delta table: the landing zone
    (`landing/<source>`), the kept bytes of quarantined files (`quarantine/_files/...`), the
    Iceberg warehouse (`warehouse`), Hudi's tables (`hudi/...`). With table_uri, the one place
    paths under LAKEHOUSE_ROOT are built."""
    return "/".join([lakehouse_root().rstrip("/"), *(part.strip("/") for part in parts)])


def landing_dir(source: str) -> Path:
    """The local folder the shop delivers `source`'s files to and file ingest reads."""
    from include.lakehouse.errors import LakehouseError

    where = folder("landing", source)
    if "://" in where:
        raise LakehouseError("file ingest reads a local landing folder; LAKEHOUSE_ROOT is remote "
                             "(mount the landing zone or use an object-store sensor)")
    return Path(where)

