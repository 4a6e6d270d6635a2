"""A small real gold table (a few thousand rows) under a throw-away lakehouse, with the history
the translators must follow: appends, a merge, a delete, a compaction."""

from __future__ import annotations

import pyarrow as pa
import pytest

TABLE = "gold/fct_daily_revenue"


def rows(start: int, count: int, amount: float = 1.0) -> pa.Table:
    ids = list(range(start, start + count))
    return pa.table({"order_date": pa.array([f"2024-01-{1 + i % 28:02d}" for i in ids]),
                     "orders": pa.array(ids, pa.int64()),
                     "revenue": pa.array([round(i * amount, 2) for i in ids], pa.float64())})


@pytest.fixture()
def gold_table(lakehouse_root):
    """gold/fct_daily_revenue keyed on order_date... here on `orders` (unique), with 6 versions."""
    from include.lakehouse.tables import delta
    import include.lakehouse.maintenance.operations as maintenance

    uri = f"{lakehouse_root}/{TABLE}"
    delta.append(uri, rows(0, 2000))                                   # v0
    delta.append(uri, rows(2000, 1000))                                # v1
    delta.merge_upsert(uri, rows(1500, 1000, amount=2.0), keys=["orders"])  # v2: 500 updated, 500 inserted
    from deltalake import DeltaTable

    DeltaTable(uri).delete("orders < 100")                             # v3 (delete)
    delta.append(uri, rows(3000, 50))                                  # v4: a small file
    maintenance.compact(uri, target_size_mb=64)                         # v5 (compaction)
    return uri
