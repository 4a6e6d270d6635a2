"""One way to read any registered table in any of its formats: DuckDB over Delta (delta_scan),
Iceberg (iceberg_scan of the catalog's metadata) and Hudi (hudi-rs into Arrow), now or at a
Delta version (the Iceberg snapshot / Hudi instant standing for it).

Owns the DuckDB connection with the delta, iceberg and avro extensions loaded offline from the
duckdb-ext wheels, and the fingerprint (rows, sums, an order-independent checksum) that shows
two formats hold the same rows. Read-only: never writes a table.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from include.lakehouse.config import storage_options
from include.lakehouse.errors import LakehouseError
from include.lakehouse.formats import hudi, iceberg
from include.lakehouse.tables.registry import resolve

FORMATS = ("delta", "iceberg", "hudi")
EXTENSIONS = ("delta", "avro", "iceberg")  # iceberg reads its manifests with avro


def connect():
    """An in-memory DuckDB with the Delta, Avro and Iceberg extensions (installed from the wheels)."""
    import tempfile

    import duckdb

    from include.lakehouse.transform.dbt_project import duckdb_extension_directory, duckdb_extension_repo

    try:
        directory = duckdb_extension_directory()
    except Exception:  # noqa: BLE001 - a private folder is as good
        directory = tempfile.mkdtemp(prefix="duckdb-ext-")
    con = duckdb.connect(config={"extension_directory": directory})
    con.execute(f"SET custom_extension_repository = '{duckdb_extension_repo()}'")
    for name in EXTENSIONS:
        con.execute(f"INSTALL {name}")
        con.execute(f"LOAD {name}")
    return con


def relation(con, table: str, fmt: str, version: int | None = None) -> str:
    """A FROM-clause expression for the table in `fmt` (registering Arrow data where needed)."""
    uri, _ = resolve(table)
    view = f"t_{fmt}_{abs(hash((table, version))) % 10**8}"
    if fmt == "delta":
        if version is None and not storage_options():
            return f"delta_scan('{uri}')"
        from deltalake import DeltaTable

        dataset = DeltaTable(uri, version=version, storage_options=storage_options()).to_pyarrow_dataset()
        con.register(view, dataset)
        return view
    if fmt == "iceberg":
        ice = iceberg.load(delta_source_name(table))
        if ice is None:
            raise LakehouseError(f"{table}: no Iceberg table yet; run publish_formats first")
        location = ice.metadata_location
        if version is None:
            return f"iceberg_scan('{location}')"
        snapshot = iceberg.snapshot_for_version(ice, version).snapshot_id
        return f"iceberg_scan('{location}', snapshot_from_id = {snapshot})"
    if fmt == "hudi":
        con.register(view, hudi.read(delta_source_name(table), version))
        return view
    raise LakehouseError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def delta_source_name(table: str) -> str:
    from include.lakehouse.tables.registry import name_of

    uri, _ = resolve(table)
    return name_of(uri)


def read(table: str, fmt: str = "delta", *, version: int | None = None, sql: str = "SELECT * FROM t",
         con=None) -> pa.Table:
    """Run `sql` over the table (named `t` in it) in the given format and version."""
    con = con or connect()
    source = relation(con, table, fmt, version)
    return con.execute(f"WITH t AS (SELECT * FROM {source}) {sql}").fetch_arrow_table()


def fingerprint(table: str, fmt: str, *, version: int | None = None, con=None) -> dict[str, Any]:
    """Rows, the sum of every numeric column and an order-independent checksum of all values
    (each row hashed over its values as text), equal across formats holding the same rows."""
    con = con or connect()
    source = relation(con, table, fmt, version)
    columns = [(r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    numeric = [c for c, kind in columns if any(k in kind.upper() for k in ("INT", "DOUBLE", "FLOAT", "DECIMAL"))]
    names = sorted(c for c, _ in columns)
    text = ", ".join(f"coalesce(CAST({_q(c)} AS VARCHAR), '<null>')" for c in names)
    sums = ", ".join(f"sum({_q(c)})::DOUBLE" for c in numeric)
    row = con.execute(f"SELECT count(*), sum(hash({text})::HUGEINT) % 1000000007"
                      f"{', ' + sums if sums else ''} FROM {source}").fetchone()
    return {"rows": int(row[0]), "checksum": int(row[1] or 0),
            "sums": {c: (round(v, 6) if v is not None else None) for c, v in zip(numeric, row[2:])}}


def _q(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'
