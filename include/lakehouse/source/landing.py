"""Task logic of the file-ingest DAGs: the shop delivering its daily file, and the checks
bronze must pass after a load (an interim gate; the data-quality issue brings GX suites).
Never writes Delta (ingest does); landing paths come from the registry (tables.registry.landing_dir)."""

from __future__ import annotations

from typing import Any

from include.lakehouse.errors import LakehouseError
from include.lakehouse.ingest.files import contract
from include.lakehouse.source.generator import ShopSource
from include.lakehouse.tables.registry import landing_dir, table_ref

ROTATION = ("csv", "json", "parquet")


def deliver_orders_file(logical_day: str, *, scale: float = 1.0, malformed_share: float = 0.02) -> dict[str, Any]:
    """The shop drops the day's orders into landing/orders (format rotates by day)."""
    shop = ShopSource(scale=scale)
    day = shop.day_for(logical_day)
    fmt = ROTATION[shop._day_index(day) % len(ROTATION)]
    path, bad = shop.write_landing_file(landing_dir("orders"), day, fmt, malformed_share=malformed_share,
                                        overwrite=False)
    return {"file": path.name, "format": fmt, "malformed_rows": bad}


def quarantined_rows(source: str) -> int:
    """Rows of `source` in quarantine: a whole-file record counts the file's rows (`_rows`), or one
    when the file could not be counted; quarantine tables written before `_rows` count records."""
    import pyarrow.compute as pc

    from include.lakehouse.tables.delta import try_open

    quarantine = try_open(table_ref(f"quarantine/{source}"))
    if quarantine is None:
        return 0
    if "_rows" not in {f.name for f in quarantine.schema().fields}:
        return quarantine.count()
    rows = quarantine.to_pyarrow_table(columns=["_rows"]).column(0)
    return int(pc.sum(pc.fill_null(rows, 1)).as_py() or 0)


def check_bronze(source: str, *, max_quarantine_share: float = 0.1) -> dict[str, Any]:
    """Bronze has rows, no nulls in required columns, and quarantine stays a small share."""
    from include.lakehouse.tables.delta import try_open

    bronze = try_open(table_ref(f"bronze/{source}"))
    if bronze is None:
        raise LakehouseError(f"bronze/{source} does not exist after ingest: no file has loaded yet")
    required = list(contract(source).required)
    table = bronze.to_pyarrow_table(columns=required)
    nulls = {c: table.column(c).null_count for c in required if table.column(c).null_count}
    quarantined = quarantined_rows(source)
    share = quarantined / max(1, quarantined + table.num_rows)
    problems = []
    if table.num_rows == 0:
        problems.append("bronze is empty")
    if nulls:
        problems.append(f"nulls in required columns {nulls}")
    if share > max_quarantine_share:
        problems.append(f"{share:.1%} of rows quarantined (limit {max_quarantine_share:.0%})")
    if problems:
        raise LakehouseError(f"bronze/{source} check failed: " + "; ".join(problems))
    return {"bronze_rows": table.num_rows, "quarantined_rows": quarantined, "quarantine_share": round(share, 4)}
