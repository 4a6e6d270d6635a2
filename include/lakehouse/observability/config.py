"""observability.yaml, validated (one pydantic model; unknown keys are errors)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

CONFIG_FILE = Path(__file__).with_name("observability.yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Freshness(_Strict):
    default_hours: float | None = 36
    layers: dict[str, float | None] = Field(default_factory=dict)
    tables: dict[str, float | None] = Field(default_factory=dict)

    def sla_hours(self, table: str) -> float | None:
        if table in self.tables:
            return self.tables[table]
        layer = table.split("/", 1)[0]
        if layer in self.layers:
            return self.layers[layer]
        return self.default_hours


class Volume(_Strict):
    trailing_days: int = Field(7, ge=1)
    min_history_days: int = Field(3, ge=1)
    factor: float = Field(3.0, gt=1)


class ObservabilityFile(_Strict):
    freshness: Freshness = Field(default_factory=Freshness)
    volume: Volume = Field(default_factory=Volume)


@lru_cache(maxsize=4)
def load_config(path: str | None = None) -> ObservabilityFile:
    from include.lakehouse.config import _validate, _yaml

    file = Path(path or CONFIG_FILE)
    return _validate(ObservabilityFile, _yaml(file), file)
