"""A Delta table's change data feed as a Spark stream, into an incremental aggregate.

`lakehouse_delta_cdf` is a Python streaming data source over delta-rs `load_cdf` (no Delta jars
needed; where the engine has Delta, `readStream.format("delta").option("readChangeFeed", ...)`
is the same thing): its offset is the table version, so each micro-batch is a range of commits,
recorded in the query's checkpoint before it runs. The first batch starts at version 0 (the
whole history, which the change feed holds since the table was created with it on).

`gold/customer_order_stats` is kept from silver/orders' changes: each change counts +1
(insert, update post-image) or -1 (delete, update pre-image) towards a customer's orders and
revenue. The sink reads the current totals of the customers in the batch, adds the batch's
increments and merges the new totals with the app transaction (app id = `stream.<query id>`,
version = batch id) in the same commit: a batch replayed after a crash finds its version and
writes nothing, so no change is counted twice. Must never write outside the table layer.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from include.lakehouse.failpoints import reach
from include.lakehouse.tables.delta import merge_upsert, try_open
from include.lakehouse.tables.registry import table_ref

SOURCE_NAME = "lakehouse_delta_cdf"
SOURCE_TABLE = "silver/orders"
STATS_TABLE = "gold/customer_order_stats"
CHANGE_SCHEMA = ("order_id long, customer_id long, amount decimal(12,2), placed_at timestamp, "
                 "_change_type string, _commit_version long")
STATS_SCHEMA = pa.schema([("customer_id", pa.int64()), ("orders", pa.int64()), ("revenue", pa.decimal128(18, 2)),
                          ("last_order_at", pa.timestamp("us", tz="UTC")), ("_batch_id", pa.int64())])
_COLUMNS = {"order_id": pa.int64(), "customer_id": pa.int64(), "amount": pa.decimal128(12, 2),
            "placed_at": pa.timestamp("us", tz="UTC"), "_change_type": pa.string(), "_commit_version": pa.int64()}
_SIGN = {"insert": 1, "update_postimage": 1, "delete": -1, "update_preimage": -1}

from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition  # noqa: E402
from pyspark.sql.streaming.datasource import SupportsTriggerAvailableNow  # noqa: E402


class VersionRange(InputPartition):
    def __init__(self, start: int, end: int):
        self.start, self.end = start, end


class ChangeFeedReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    def __init__(self, options: dict[str, str]):
        self.uri = options["path"]  # a registered table name or a path
        self.target: int | None = None

    def prepareForTriggerAvailableNow(self) -> None:
        self.target = self._version()  # availableNow: the versions there are now, not later ones

    def _version(self) -> int:
        table = try_open(self.uri)
        return table.version() if table is not None else -1

    def initialOffset(self) -> dict:
        return {"version": -1}  # nothing read yet: the first batch starts at version 0

    def latestOffset(self, start: dict, limit) -> dict:
        latest = self._version() if self.target is None else self.target
        return {"version": max(int(start["version"]), latest)}

    def partitions(self, start: dict, end: dict):
        from include.lakehouse.maintenance.operations import feed_ranges

        done, current = int(start["version"]), int(end["version"])
        if current <= done:
            return []
        # one partition per version range; what a restore undid is left out (the one rule, maintenance.py)
        return [VersionRange(a, b) for a, b in feed_ranges(self.uri, None if done < 0 else done, current)]

    def read(self, partition: VersionRange):
        from include.lakehouse.maintenance.operations import read_changes

        if not isinstance(partition, VersionRange):  # an empty range: Spark plans one placeholder partition
            return
        changes = read_changes(self.uri, starting_version=partition.start, ending_version=partition.end)
        yield from changes.select(list(_COLUMNS)).cast(pa.schema(list(_COLUMNS.items()))).to_batches()


class ChangeFeedSource(DataSource):
    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def schema(self) -> str:
        return CHANGE_SCHEMA

    def streamReader(self, schema) -> DataSourceStreamReader:
        return ChangeFeedReader(self.options)


def change_stream(spark, table: str = SOURCE_TABLE):
    spark.dataSource.register(ChangeFeedSource)
    return spark.readStream.format(SOURCE_NAME).option("path", table_ref(table)).load()


def increments(changes: pa.Table) -> dict[int, dict[str, Any]]:
    """Per customer: orders and revenue to add, and the latest order time added, from a batch of changes."""
    out: dict[int, dict[str, Any]] = {}
    for change in changes.to_pylist():
        sign = _SIGN.get(change["_change_type"])
        if sign is None or change["customer_id"] is None:
            continue
        acc = out.setdefault(change["customer_id"], {"orders": 0, "revenue": Decimal(0), "last_order_at": None})
        acc["orders"] += sign
        acc["revenue"] += sign * (change["amount"] or Decimal(0))
        if sign > 0 and change["placed_at"] is not None:
            acc["last_order_at"] = max(filter(None, [acc["last_order_at"], change["placed_at"]]))
    return out


class CustomerStatsSink:
    """`foreachBatch` target: current totals + this batch's increments, merged once per batch."""

    def __init__(self, checkpoint: str):
        self.checkpoint = checkpoint
        self.batches: list[dict[str, Any]] = []

    def __call__(self, batch_df, batch_id: int) -> None:
        from include.lakehouse.streaming.queries import query_id

        app_id = f"stream.{query_id(self.checkpoint)}"
        changes = batch_df.toArrow()
        if changes.num_rows == 0:
            self.batches.append({"batch_id": batch_id, "changes": 0, "customers": 0})
            return
        delta = increments(changes)
        current = try_open(STATS_TABLE)
        totals = {}
        if current is not None and delta:
            have = current.to_pyarrow_dataset().to_table(filter=pc.field("customer_id").isin(list(delta)),
                                                           columns=["customer_id", "orders", "revenue", "last_order_at"])
            totals = {r["customer_id"]: r for r in have.to_pylist()}
        rows = []
        for customer_id, add in delta.items():
            old = totals.get(customer_id, {"orders": 0, "revenue": Decimal(0), "last_order_at": None})
            last = max(filter(None, [old["last_order_at"], add["last_order_at"]]), default=None)
            rows.append({"customer_id": customer_id, "orders": old["orders"] + add["orders"],
                         "revenue": old["revenue"] + add["revenue"], "last_order_at": last, "_batch_id": batch_id})
        reach("cdf.before_stats_commit")
        merge_upsert(STATS_TABLE, pa.Table.from_pylist(rows, schema=STATS_SCHEMA), keys=["customer_id"],
                     app_id=app_id, app_version=batch_id)
        reach("cdf.after_stats_commit")
        self.batches.append({"batch_id": batch_id, "changes": changes.num_rows, "customers": len(rows)})


def run_query(spark, *, trigger: str = "availableNow", query_name: str = "stream_customer_order_stats",
              timeout: float | None = None) -> dict[str, Any]:
    from include.lakehouse.streaming.queries import checkpoint_location, run_to_end

    started = time.perf_counter()
    checkpoint = checkpoint_location(query_name)
    sink = CustomerStatsSink(checkpoint)
    writer = change_stream(spark).writeStream.queryName(query_name).option("checkpointLocation", checkpoint).foreachBatch(sink)
    query, _ = run_to_end(writer, trigger=trigger, query_name=query_name, timeout=timeout)
    return {"query": query_name, "query_id": str(query.id), "batches": [b["batch_id"] for b in sink.batches],
            "changes": sum(b["changes"] for b in sink.batches), "customers_updated": sum(b["customers"] for b in sink.batches),
            "seconds": round(time.perf_counter() - started, 2)}
