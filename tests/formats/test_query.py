"""The cross-format query helper: the fingerprint tells tables apart when one value differs,
reads SQL over any format and version, and names what is missing."""

from __future__ import annotations

import pyarrow as pa
import pytest

from include.lakehouse.errors import LakehouseError
from include.lakehouse.formats import publish, query
from include.lakehouse.tables import delta
from tests.formats.conftest import rows


def test_fingerprint_changes_with_one_value_and_sql_reads_each_format(lakehouse_root):
    a, b = f"{lakehouse_root}/gold/a", f"{lakehouse_root}/gold/b"
    delta.append(a, rows(0, 300))
    changed = rows(0, 300)
    changed = changed.set_column(2, "revenue", pa.array([0.5] + changed.column("revenue").to_pylist()[1:]))
    delta.append(b, changed)
    con = query.connect()
    assert query.fingerprint(a, "delta", con=con)["checksum"] != query.fingerprint(b, "delta", con=con)["checksum"]
    publish.publish_table(a)
    delta.append(a, rows(300, 10))
    publish.publish_table(a)
    for fmt in query.FORMATS:
        assert query.read(a, fmt, sql="SELECT count(*) AS n FROM t", con=con).column("n")[0].as_py() == 310
        assert query.read(a, fmt, version=0, sql="SELECT max(orders) AS m FROM t", con=con).column("m")[0].as_py() == 299
    with pytest.raises(LakehouseError, match="no Iceberg table yet"):
        query.fingerprint(b, "iceberg", con=con)
    with pytest.raises(LakehouseError, match="unknown format"):
        query.read(a, "orc", con=con)
