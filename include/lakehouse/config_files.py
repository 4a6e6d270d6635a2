"""The shape of the lakehouse's configuration files (tables.yaml, sources.yaml), as pydantic
models: unknown keys, wrong types and dangling references fail at load with the file and the
key named (config.load_registry / config.load_sources turn them into one-line ConfigErrors).

Owns validation only: never reads files, opens tables or imports Airflow.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

LAYERS = ("landing", "bronze", "silver", "gold", "features", "predictions", "quarantine", "ops")
FILE_COLUMN_TYPES = ("int64", "int32", "float64", "string", "bool", "date32", "timestamp")
_DECIMAL = re.compile(r"^decimal\(\d+,\s*\d+\)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- tables.yaml ---------------------------------------------------------------------------

class MaintenanceSettings(_Strict):
    target_file_size_mb: int = Field(128, gt=0)
    vacuum_retention_hours: int = Field(168, ge=0)
    z_order_by: list[str] = []
    checkpoint: bool = True


class RegistryDefaults(_Strict):
    maintenance: MaintenanceSettings = MaintenanceSettings()


class TableSettings(_Strict):
    description: str = ""
    partition_by: list[str] = []
    keys: list[str] = []
    sequence_column: str | None = None
    change_data_feed: bool = False
    maintenance: MaintenanceSettings | None = None
    # which engine applies CDC / SCD2 changes to the table (include/lakehouse/spark/changes.py):
    # `spark` always, or delta-rs until the table holds `spark_from_rows` rows
    engine: Literal["delta-rs", "spark"] = "delta-rs"
    spark_from_rows: int | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _threshold_only_for_delta_rs(self) -> "TableSettings":
        if self.engine == "spark" and self.spark_from_rows is not None:
            raise ValueError("spark_from_rows switches a delta-rs table to Spark; with engine: spark it means nothing")
        return self


class RegistryFile(_Strict):
    defaults: RegistryDefaults = RegistryDefaults()
    tables: dict[str, TableSettings] = {}

    @field_validator("tables")
    @classmethod
    def _names_are_layer_slash_name(cls, tables: dict[str, TableSettings]) -> dict[str, TableSettings]:
        for name in tables:
            layer, sep, rest = name.partition("/")
            if not sep or not rest or layer not in LAYERS:
                raise ValueError(f"'{name}' must be '<layer>/<name>' with layer in {', '.join(LAYERS)}")
        return tables


# --- sources.yaml --------------------------------------------------------------------------

class FileSource(_Strict):
    formats: list[Literal["csv", "jsonl", "parquet"]] = ["csv", "jsonl", "parquet"]
    columns: dict[str, str]
    required: list[str] = []
    checks: dict[str, Literal["non_negative"]] = {}
    settle_seconds: float | None = Field(None, ge=0)

    @field_validator("columns")
    @classmethod
    def _known_types(cls, columns: dict[str, str]) -> dict[str, str]:
        for column, kind in columns.items():
            if kind not in FILE_COLUMN_TYPES and not _DECIMAL.match(kind):
                raise ValueError(f"column '{column}': unknown type '{kind}'; use one of "
                                 f"{', '.join(FILE_COLUMN_TYPES)} or decimal(p,s)")
        return columns

    @model_validator(mode="after")
    def _named_columns_exist(self) -> "FileSource":
        for column in [*self.required, *self.checks]:
            if column not in self.columns:
                raise ValueError(f"'{column}' is not one of the declared columns {sorted(self.columns)}")
        return self


class TopicDefaults(_Strict):
    partitions: int = Field(1, ge=1)
    replication_factor: int = Field(1, ge=1)
    retention_ms: int = Field(7 * 24 * 3600 * 1000, ge=-1)  # must outlast the longest pause of ingest_kafka


class TopicSettings(_Strict):
    """A topic's own keys; what it leaves unset comes from `topic_defaults`."""
    partitions: int | None = Field(None, ge=1)
    replication_factor: int | None = Field(None, ge=1)
    retention_ms: int | None = Field(None, ge=-1)


TimeUnit = Literal["millis", "micros", "nanos"]


class CdcTable(_Strict):
    """A Debezium-fed table. Encodings say how the connector wrote a column when a message
    carries no schema: a column list (micros) or {column: millis|micros|nanos}."""
    topic: str
    keys: list[str] = Field(min_length=1)
    columns: dict[str, str] = {}
    timestamps: list[str] | dict[str, TimeUnit] = []
    times: list[str] | dict[str, TimeUnit] = []
    dates: list[str] = []
    decimals: dict[str, tuple[int, int]] = {}
    decimal_handling: Literal["precise", "string", "double"] = "precise"

    @field_validator("columns")
    @classmethod
    def _known_column_types(cls, columns: dict[str, str]) -> dict[str, str]:
        return FileSource._known_types(columns)


class Dimension(_Strict):
    source: str
    surrogate_key: str
    tracked: list[str] = Field(min_length=1)
    type1: list[str] = []
    effective: str


class SourcesFile(_Strict):
    files: dict[str, FileSource] = {}
    topic_defaults: TopicDefaults = TopicDefaults()
    topics: dict[str, TopicSettings] = {}
    cdc: dict[str, CdcTable] = {}
    dimensions: dict[str, Dimension] = {}

    @model_validator(mode="after")
    def _fill_topic_defaults(self) -> "SourcesFile":
        defaults = self.topic_defaults.model_dump()
        filled = {name: TopicSettings(**{**defaults, **spec.model_dump(exclude_none=True)})
                  for name, spec in self.topics.items()}
        object.__setattr__(self, "topics", filled)
        return self

    @model_validator(mode="after")
    def _references_resolve(self) -> "SourcesFile":
        for name, table in self.cdc.items():
            if table.topic not in self.topics:
                raise ValueError(f"cdc.{name}.topic: '{table.topic}' is not declared under topics "
                                 f"({', '.join(sorted(self.topics))})")
        for name, dim in self.dimensions.items():
            if dim.source not in self.cdc:
                raise ValueError(f"dimensions.{name}.source: '{dim.source}' is not declared under cdc "
                                 f"({', '.join(sorted(self.cdc))})")
        return self
