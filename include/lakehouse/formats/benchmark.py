"""Delta vs Iceberg vs Hudi on the same generated data: write, full read, selective read on
the sorted column (with the files each format scans), upsert, delete, compaction, time
travel and storage; rows for `ops/format_benchmark` and a markdown report with PNG charts
under `.local/reports/formats/`, including a cost model and 'which format when' for ML.

Delta and Iceberg are written natively (delta-rs through include/lakehouse/tables/delta.py and
maintenance.py; pyiceberg). Hudi has no writer here, so its figures are the translation of
each Delta commit (hardlinks + timeline) and hudi-rs reads. Everything happens in a
throw-away lakehouse folder; only the result rows are written to the real one. Never
touches a registered table other than ops/format_benchmark.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa

DEFAULT_ROWS = 1_000_000
CHUNKS = 10  # written as 10 commits sorted by customer_id: the data-skipping column
RESULTS_TABLE = "ops/format_benchmark"
# Object-store prices for the cost model (S3 standard, us-east-1 list prices, USD).
PRICE_GB_MONTH = 0.023
PRICE_PUT_PER_1000 = 0.005
PRICE_GET_PER_1000 = 0.0004


def default_rows() -> int:
    return int(os.environ.get("LAKEHOUSE_FORMAT_BENCH_ROWS") or DEFAULT_ROWS)


def generate(rows: int, seed: int = 7) -> pa.Table:
    """Orders-like rows sorted by customer_id (so each file covers a customer range)."""
    rng = np.random.default_rng(seed)
    customers = np.sort(rng.integers(0, max(rows // 10, 10), rows))
    return pa.table({
        "order_id": pa.array(np.arange(rows), pa.int64()),
        "customer_id": pa.array(customers, pa.int64()),
        "amount": pa.array(np.round(rng.uniform(1, 500, rows), 2)),
        "status": pa.array(rng.choice(["placed", "paid", "shipped", "returned"], rows)),
    })


@contextlib.contextmanager
def _scratch_lakehouse():
    """A throw-away LAKEHOUSE_ROOT (same filesystem as the real one, so hardlinks work)."""
    from include.lakehouse.config import local_dir

    base = local_dir("bench")
    base.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="formats-", dir=base))
    before = os.environ.get("LAKEHOUSE_ROOT")
    os.environ["LAKEHOUSE_ROOT"] = str(root)
    try:
        yield root
    finally:
        if before is None:
            os.environ.pop("LAKEHOUSE_ROOT", None)
        else:
            os.environ["LAKEHOUSE_ROOT"] = before
        shutil.rmtree(root, ignore_errors=True)


def _disk(path: Path) -> tuple[int, int]:
    """(bytes, files) of the data files under a folder (parquet only)."""
    files = [p for p in Path(path).rglob("*.parquet")] if Path(path).exists() else []
    return sum(p.stat().st_size for p in files), len(files)


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def _one_run(rows: int) -> list[dict[str, Any]]:
    """Every operation once per format on fresh tables; one row per (format, operation)."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable
    from pyiceberg.expressions import EqualTo, LessThan

    from include.lakehouse.tables import delta
    import include.lakehouse.maintenance.operations as maintenance
    from include.lakehouse.formats import hudi, iceberg

    data = generate(rows)
    step = -(-rows // CHUNKS)
    chunks = [data.slice(i, step) for i in range(0, rows, step)]
    probe = int(data.column("customer_id")[rows // 2].as_py())
    cut = int(data.column("customer_id")[rows // 100].as_py())  # delete ~1% of the rows
    rng = np.random.default_rng(11)
    changed = data.take(pa.array(np.sort(rng.choice(rows, max(rows // 20, 1), replace=False))))
    changed = changed.set_column(2, "amount", pc.add(changed.column("amount"), 1.0))
    new = generate(max(rows // 20, 1), seed=9)
    new = new.set_column(0, "order_id", pa.array(np.arange(rows, rows + new.num_rows), pa.int64()))
    upsert = pa.concat_tables([changed, new])  # 10%: half updates, half inserts

    with _scratch_lakehouse() as root:
        out: list[dict[str, Any]] = []
        name = "gold/bench_orders"
        d_uri = str(root / name)
        cat = iceberg.catalog()
        cat.create_namespace_if_not_exists("bench")
        ice = cat.create_table(("bench", "orders"), schema=data.schema)
        h_path = hudi.table_path(name)
        ice_dir = root / "warehouse" / "bench"

        def record(fmt, op, seconds, *, written=0, read=0, scanned=None, total_files=None, note=""):
            out.append({"format": fmt, "operation": op, "seconds": round(seconds, 4), "bytes_written": int(written),
                        "bytes_read": int(read), "files_scanned": scanned, "files_total": total_files, "note": note})

        def delta_bytes() -> tuple[int, int]:
            return _disk(Path(d_uri))

        def delta_snapshot_bytes() -> int:
            return sum(os.path.getsize(f) for f in DeltaTable(d_uri).file_uris())

        def ice_files():
            return [t.file for t in ice.scan().plan_files()]

        def hudi_own_bytes() -> int:
            """Bytes only Hudi holds (copies); hardlinks of Delta's files add none."""
            files = list(h_path.glob("*.parquet")) if h_path.exists() else []
            return sum(p.stat().st_size for p in files if p.stat().st_nlink == 1)

        def hudi_translate(op):
            before = hudi_own_bytes()
            seconds, result = _timed(lambda: hudi.translate(name, d_uri))
            record("hudi", op, seconds, written=hudi_own_bytes() - before,
                   note=f"translation of {result['snapshots_written']} Delta commit(s) ({result['mode']}); no Hudi writer")

        # write: 10 commits sorted by customer_id
        before = delta_bytes()[0]
        seconds, _ = _timed(lambda: [delta.append(d_uri, c) for c in chunks])
        record("delta", "write", seconds, written=delta_bytes()[0] - before, total_files=delta_bytes()[1])
        seconds, _ = _timed(lambda: [ice.append(c) for c in chunks])
        record("iceberg", "write", seconds, written=_disk(ice_dir)[0], total_files=len(ice_files()))
        hudi_translate("write")
        load_version = DeltaTable(d_uri).version()
        ice_load_snapshot = ice.current_snapshot().snapshot_id
        # zero-copy Delta -> Iceberg (add_files of the Delta snapshot's files)
        seconds, result = _timed(lambda: iceberg.translate(name, d_uri))
        record("iceberg", "translate_from_delta", seconds, written=0,
               note=f"{result['snapshots_written']} snapshot(s), {result['mode']}: metadata only, "
                    f"{seconds / max(result['snapshots_written'], 1):.3f} s per Delta version")

        # full read
        size = delta_snapshot_bytes()
        seconds, t = _timed(lambda: DeltaTable(d_uri).to_pyarrow_dataset().to_table())
        record("delta", "full_read", seconds, read=size, scanned=len(DeltaTable(d_uri).file_uris()))
        seconds, t = _timed(lambda: ice.scan().to_arrow_batch_reader().read_all())
        record("iceberg", "full_read", seconds, read=sum(f.file_size_in_bytes for f in ice_files()), scanned=len(ice_files()))
        seconds, t = _timed(lambda: hudi.read(name))
        record("hudi", "full_read", seconds, read=_disk(h_path)[0], scanned=hudi.files_for(name))

        # selective read: customer_id = probe (sorted column: min/max statistics prune files)
        files = maintenance.files_for_point_lookup(d_uri, "customer_id", probe)
        seconds, _ = _timed(lambda: DeltaTable(d_uri).to_pyarrow_dataset().to_table(filter=pc.field("customer_id") == probe))
        record("delta", "selective_read", seconds, read=size * files / max(len(DeltaTable(d_uri).file_uris()), 1),
               scanned=files, total_files=len(DeltaTable(d_uri).file_uris()))
        tasks = list(ice.scan(row_filter=EqualTo("customer_id", probe)).plan_files())
        seconds, _ = _timed(lambda: ice.scan(row_filter=EqualTo("customer_id", probe)).to_arrow_batch_reader().read_all())
        record("iceberg", "selective_read", seconds, read=sum(t.file.file_size_in_bytes for t in tasks),
               scanned=len(tasks), total_files=len(ice_files()))
        filters = [("customer_id", "=", str(probe))]
        scanned = hudi.files_for(name, filters=filters)
        seconds, _ = _timed(lambda: hudi.read(name, filters=filters))
        total = hudi.files_for(name)
        record("hudi", "selective_read", seconds, read=_disk(h_path)[0] * scanned / max(total, 1),
               scanned=scanned, total_files=total)

        # small-file compaction: the 10 files of the load into one
        files_before = len(DeltaTable(d_uri).file_uris())
        before = delta_bytes()[0]
        seconds, _ = _timed(lambda: maintenance.compact(d_uri, target_size_mb=256))
        record("delta", "compaction", seconds, written=delta_bytes()[0] - before,
               note=f"files {files_before} -> {len(DeltaTable(d_uri).file_uris())}")
        files_before, before = len(ice_files()), _disk(ice_dir)[0]

        def ice_rewrite():
            current = ice.scan().to_arrow_batch_reader().read_all()
            ice.overwrite(current)
        seconds, _ = _timed(ice_rewrite)
        record("iceberg", "compaction", seconds, written=_disk(ice_dir)[0] - before,
               note=f"files {files_before} -> {len(ice_files())}; pyiceberg has no rewrite_data_files: full overwrite")
        hudi_translate("compaction")

        # upsert 10%
        before = delta_bytes()[0]
        seconds, _ = _timed(lambda: delta.merge_upsert(d_uri, upsert, keys=["order_id"]))
        record("delta", "upsert", seconds, written=delta_bytes()[0] - before)
        before = _disk(ice_dir)[0]
        seconds, _ = _timed(lambda: ice.upsert(upsert, join_cols=["order_id"]))
        record("iceberg", "upsert", seconds, written=_disk(ice_dir)[0] - before, note="pyiceberg upsert (row compare)")
        hudi_translate("upsert")

        # Iceberg's faster upsert: delete the keys + append the rows, one transaction (same result)
        ice2 = cat.create_table(("bench", "orders_delete_append"), schema=data.schema)
        ice2.append(data)
        keys = upsert.column("order_id")

        def delete_append():
            from pyiceberg.expressions import In

            with ice2.transaction() as tx:
                tx.delete(In("order_id", keys.to_pylist()))
                tx.append(upsert)
        seconds, _ = _timed(delete_append)
        record("iceberg", "upsert_delete_append", seconds, note="delete by key + append in one transaction")

        # delete ~1%
        before = delta_bytes()[0]
        seconds, _ = _timed(lambda: delta.delete_where(d_uri, f"customer_id < {cut}"))
        record("delta", "delete", seconds, written=delta_bytes()[0] - before)
        before = _disk(ice_dir)[0]
        seconds, _ = _timed(lambda: ice.delete(LessThan("customer_id", cut)))
        record("iceberg", "delete", seconds, written=_disk(ice_dir)[0] - before)
        hudi_translate("delete")

        # time travel to the initial load
        seconds, t = _timed(lambda: DeltaTable(d_uri, version=load_version).to_pyarrow_dataset().to_table())
        record("delta", "time_travel", seconds, read=0, note=f"{t.num_rows} rows at version {load_version}")
        seconds, t = _timed(lambda: ice.scan(snapshot_id=ice_load_snapshot).to_arrow_batch_reader().read_all())
        record("iceberg", "time_travel", seconds, note=f"{t.num_rows} rows at the load snapshot")
        seconds, t = _timed(lambda: hudi.read(name, load_version))
        record("hudi", "time_travel", seconds, note=f"{t.num_rows} rows at the load instant")

        # storage: current snapshot and everything on disk
        d_live = delta_snapshot_bytes()
        record("delta", "storage", 0, written=delta_bytes()[0], read=d_live, total_files=delta_bytes()[1],
               note="bytes_written = on disk before vacuum, bytes_read = current snapshot")
        record("iceberg", "storage", 0, written=_disk(ice_dir)[0], read=sum(f.file_size_in_bytes for f in ice_files()),
               total_files=_disk(ice_dir)[1], note="native Iceberg table (the add_files copy adds 0 data bytes)")
        record("hudi", "storage", 0, written=hudi_own_bytes(), read=_disk(h_path)[0], total_files=_disk(h_path)[1],
               note="bytes_written = bytes only Hudi holds (hardlinks of Delta's files count 0)")
        rows_now = {"delta": DeltaTable(d_uri).to_pyarrow_dataset().count_rows(),
                    "iceberg": ice.scan().to_arrow_batch_reader().read_all().num_rows,
                    "hudi": hudi.read(name).num_rows}
        for r in out:
            r["rows_after"] = rows_now[r["format"]]
        return out


def run(rows: int | None = None, *, repeats: int = 1, run_id: str | None = None,
        report_dir: Path | None = None, record: bool = True) -> dict[str, Any]:
    """Run the benchmark `repeats` times (medians reported), write the rows and the report."""
    rows = rows or default_rows()
    runs = [_one_run(rows) for _ in range(repeats)]
    merged: dict[tuple[str, str], list[dict]] = {}
    for run_rows in runs:
        for r in run_rows:
            merged.setdefault((r["format"], r["operation"]), []).append(r)
    results = []
    for (fmt, op), samples in merged.items():
        first = dict(samples[0])
        first["seconds"] = round(statistics.median(s["seconds"] for s in samples), 4)
        first["repeats"] = len(samples)
        results.append(first)
    stamp = datetime.now(timezone.utc)
    run_id = run_id or f"bench_{stamp:%Y%m%dT%H%M%S}"
    for r in results:
        r.update({"run_id": run_id, "rows": rows, "measured_at": stamp})
        r["cost_usd"] = cost(r)
    if record:
        _write_rows(results, run_id)
    from include.lakehouse.formats.report import write_report

    report = write_report(results, rows=rows, repeats=repeats, out_dir=report_dir)
    return {"run_id": run_id, "rows": rows, "repeats": repeats, "report": str(report), "results": results}


def cost(r: dict[str, Any]) -> float:
    """Request + storage cost of one operation on object storage: one PUT per file written
    (about 128 MB per file or less), one GET per file read, a month of the bytes written."""
    mb = 1024 * 1024
    puts = (r["bytes_written"] / (128 * mb) + (1 if r["bytes_written"] else 0)) if r["operation"] != "storage" else 0
    gets = r["files_scanned"] or 0
    stored = r["bytes_written"] / 1024 ** 3 * PRICE_GB_MONTH
    return round(puts * PRICE_PUT_PER_1000 / 1000 + gets * PRICE_GET_PER_1000 / 1000 + stored, 8)


def _write_rows(results: list[dict[str, Any]], run_id: str) -> None:
    from include.lakehouse.tables.delta import append

    schema = pa.schema([("run_id", pa.string()), ("rows", pa.int64()), ("format", pa.string()),
                        ("operation", pa.string()), ("seconds", pa.float64()), ("repeats", pa.int64()),
                        ("bytes_written", pa.int64()), ("bytes_read", pa.int64()), ("files_scanned", pa.int64()),
                        ("files_total", pa.int64()), ("rows_after", pa.int64()), ("cost_usd", pa.float64()),
                        ("note", pa.string()), ("measured_at", pa.timestamp("us", "UTC"))])
    table = pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in results], schema=schema)
    append(RESULTS_TABLE, table, app_id=f"format_benchmark.{run_id}")
