"""The result every table operation returns: what changed, at which version, how fast.

Tasks push `to_dict()` to XCom and log `summary()`; `make demo` sums the row counts.
Never reads or writes a table; demo counts and report lines are built on the Airflow side
(plugins/lakehouse_airflow/reports.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class OperationResult:
    table: str
    operation: str
    version: int | None = None
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    rows_skipped: int = 0
    files_added: int = 0
    files_removed: int = 0
    seconds: float = 0.0
    skipped: bool = False  # True when the call was a no-op because it had already been applied
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        state = "already applied, nothing written" if self.skipped else f"now at version {self.version}"
        return (
            f"{self.operation} {self.table}: {state}; rows +{self.rows_inserted} ~{self.rows_updated} "
            f"-{self.rows_deleted} (skipped {self.rows_skipped}); files +{self.files_added} "
            f"-{self.files_removed}; {self.seconds:.2f}s"
        )
