"""Typed errors of the lakehouse package.

Each message names the table and says how to fix the problem, because the first reader
is an on-call engineer looking at a task log, not the author of the code.
Never imports another lakehouse module (everything imports this one).
"""

from __future__ import annotations


class LakehouseError(Exception):
    """Base class: every error this package raises on purpose."""


class ConfigError(LakehouseError, ValueError):
    """A configuration file (tables.yaml, sources.yaml) is malformed: the message names the file,
    the key and the problem on one line."""


class UnknownTableError(LakehouseError, KeyError):
    def __init__(self, name: str, known: list[str]):
        hint = ", ".join(sorted(known)[:12]) or "(registry is empty)"
        super().__init__(
            f"unknown table '{name}': add it to include/lakehouse/tables.yaml "
            f"or use one of: {hint}"
        )

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])


class KeyColumnError(LakehouseError):
    """A key, sequence or tracked column is missing or unusable."""


class SchemaEvolutionError(LakehouseError):
    """Incoming data cannot be written without breaking the table's schema."""


class RetentionGuardError(LakehouseError):
    """A vacuum asked for a retention shorter than the guard allows."""


class VersionNotAvailableError(LakehouseError):
    """A time-travel or restore target does not exist or its files were vacuumed."""


class ConcurrentWriteError(LakehouseError):
    """Another writer committed what this write was planned against: re-plan, never duplicate."""


class RestoredUpstreamError(LakehouseError):
    """A consumer already applied changes that a restore of its upstream table undid."""
