"""A deterministic synthetic shop: customers, products, orders, order items, payments and
order events, plus the two shapes sources really arrive in: landing files (CSV, JSON
lines, Parquet, with a controlled share of malformed rows) and Debezium change envelopes
of the OLTP tables (snapshot reads, creates, updates, deletes with before/after, LSN,
ts_ms).

Same seed, scale and day -> the same rows, on every machine. Day d's data depends only on
(seed, scale, start date, d), so a DAG rerun for a logical date regenerates it exactly.
Never writes a Delta table: what it produces reaches the lakehouse only through ingest.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import os
import uuid
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import numpy as np
import pyarrow as pa

from include.lakehouse.failpoints import reach

CITIES = ["Oslo", "Bergen", "Berlin", "Munich", "Paris", "Lyon", "Madrid", "Rome", "Milan", "Vienna",
          "Warsaw", "Prague", "Lisbon", "Dublin", "Amsterdam", "Zurich"]
COUNTRY = {"Oslo": "NO", "Bergen": "NO", "Berlin": "DE", "Munich": "DE", "Paris": "FR", "Lyon": "FR",
           "Madrid": "ES", "Rome": "IT", "Milan": "IT", "Vienna": "AT", "Warsaw": "PL", "Prague": "CZ",
           "Lisbon": "PT", "Dublin": "IE", "Amsterdam": "NL", "Zurich": "CH"}
SEGMENTS = ["consumer", "small_business", "corporate"]
FIRST = ["Ada", "Alan", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Edsger", "Frances", "John",
         "Katherine", "Dennis", "Radia", "Tim", "Hedy", "Guido"]
LAST = ["Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Dijkstra", "Allen",
        "Backus", "Johnson", "Ritchie", "Perlman", "Berners-Lee", "Lamarr", "Rossum"]
CATEGORIES = ["books", "electronics", "garden", "kitchen", "toys", "sports", "music", "fashion"]
STATUSES = ["placed", "paid", "shipped", "delivered", "cancelled"]
EVENT_FLOW = ["order_placed", "payment_authorized", "order_shipped", "order_delivered"]
PAYMENT_METHODS = ["card", "paypal", "invoice", "gift_card"]

ORDER_SCHEMA = pa.schema([
    ("order_id", pa.int64()), ("customer_id", pa.int64()), ("order_date", pa.date32()),
    ("placed_at", pa.timestamp("us", tz="UTC")), ("status", pa.string()),
    ("amount", pa.decimal128(12, 2)), ("currency", pa.string()), ("items", pa.int32()),
])


@contextmanager
def bulk_build() -> Iterator[None]:
    """Cyclic garbage collection paused while building many objects that form no reference
    cycles (customer states, envelopes, JSON): otherwise each collection rescans the ever
    larger set built so far, which costs as much as the building (reference counting frees
    everything as usual)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _in_progress_name(path: Path) -> Path:
    """Where a landing file is written before it is published: a `.tmp` name file ingest never
    reads, unique per writer so two deliveries of the same file never interleave their bytes."""
    return path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def _publish(tmp: Path, path: Path) -> None:
    """Rename the finished file into place (atomic on one file system): ingest sees the whole
    file or none of it, so the orders source needs no settle time."""
    reach("shop.landing_file_written")
    os.replace(tmp, path)


def _activity(customer_ids: np.ndarray) -> np.ndarray:
    """How often each customer orders, as probabilities: a fixed, skewed propensity per customer
    (a few frequent buyers, many occasional ones), so past behaviour predicts future orders."""
    u = ((customer_ids.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)).astype(np.float64) / 2**32
    weight = 0.05 + 4.0 * u ** 4
    return weight / weight.sum()


class _Customer(NamedTuple):
    customer_id: int
    name: str
    email: str
    city: str
    country: str
    segment: str
    created_at: datetime
    updated_at: datetime

    def row(self) -> dict[str, Any]:
        return self._asdict()


class _ScalarDraws:
    """Scalar `rng.uniform(0, high)` and `rng.integers(n)` of a numpy Generator (PCG64), made
    from its raw 64-bit stream, fetched in bulk: the same values as the Generator's own calls
    (numpy's algorithms: a double from the top 53 bits; Lemire's bounded 32-bit integers,
    two per raw draw), without numpy's per-call overhead, for the customer simulation's hot
    loop. `sync()` hands the stream back so the Generator goes on as if it had made the draws.
    tests/source/test_generator_equivalence.py checks them against the Generator."""

    __slots__ = ("_bits", "_start", "_raw", "_pos", "_half")

    def __init__(self, rng: np.random.Generator, expected: int):
        self._bits = rng.bit_generator
        self._start = self._bits.state
        self._half = self._start["uinteger"] if self._start["has_uint32"] else None  # a buffered 32-bit half
        self._raw = self._bits.random_raw(expected).tolist()
        self._pos = 0

    def _next64(self) -> int:
        pos = self._pos
        self._pos = pos + 1
        try:
            return self._raw[pos]
        except IndexError:
            self._raw.extend(self._bits.random_raw(64).tolist())
            return self._raw[pos]

    def _next32(self) -> int:
        half = self._half
        if half is not None:
            self._half = None
            return half
        raw = self._next64()
        self._half = raw >> 32
        return raw & 0xFFFFFFFF

    def uniform(self, high: float) -> float:
        """`rng.uniform(0, high)`."""
        return high * ((self._next64() >> 11) * (1.0 / 9007199254740992.0))

    def integers(self, n: int) -> int:
        """`rng.integers(n)` for 1 < n < 2**32."""
        m = self._next32() * n
        if (m & 0xFFFFFFFF) < n:  # Lemire: maybe biased, draw again while below 2**32 % n
            threshold = 0x100000000 % n
            while (m & 0xFFFFFFFF) < threshold:
                m = self._next32() * n
        return m >> 32

    def sync(self) -> None:
        """Leave the Generator exactly where its own calls would have: `_pos` raw draws on, with
        the buffered half, if any."""
        self._bits.state = self._start
        self._bits.advance(self._pos)
        state = self._bits.state
        state["has_uint32"], state["uinteger"] = (0, 0) if self._half is None else (1, self._half)
        self._bits.state = state


_PLAIN = frozenset({str, int, float, bool, type(None)})  # JSON values as they are


def _debezium_value(value: Any) -> Any:
    """Debezium's JSON encodings: MicroTimestamp for timestamps, days for dates, decimals
    as strings (decimal.handling.mode=string)."""
    if type(value) in _PLAIN:
        return value
    if isinstance(value, datetime):
        return int(value.timestamp() * 1_000_000)
    if isinstance(value, date):
        return (value - date(1970, 1, 1)).days
    if isinstance(value, Decimal):
        return str(value)
    return value


def _timestamp_times(column: pa.ChunkedArray, factor: int) -> list[int]:
    """`int(t.timestamp() * factor)` for each t of a null-free timestamp[us, UTC] column, with the
    same float arithmetic (timestamp() divides the exact microseconds by 10**6), vectorized."""
    micros = column.cast(pa.int64()).to_numpy()
    return ((micros.astype(np.float64) / 1e6) * factor).astype(np.int64).tolist()


def _debezium_images(table: pa.Table) -> list[dict]:
    """`{k: _debezium_value(v) for k, v in row.items()}` for each row of `table.to_pylist()`,
    built column by column."""
    columns = []
    for field, column in zip(table.schema, table.columns):
        kind = field.type
        if column.null_count == 0 and pa.types.is_timestamp(kind) and kind.unit == "us" and kind.tz == "UTC":
            columns.append(_timestamp_times(column, 1_000_000))
        elif column.null_count == 0 and pa.types.is_date32(kind):
            columns.append(column.cast(pa.int32()).to_pylist())  # days since 1970-01-01
        else:
            columns.append([_debezium_value(v) for v in column.to_pylist()])
    names = table.column_names
    return [dict(zip(names, values)) for values in zip(*columns)]


def _envelope(table: str, op: str, before: dict | None, after: dict | None, ts_ms: int, lsn: int) -> dict:
    return {
        "before": before, "after": after, "op": op, "ts_ms": ts_ms + 5,
        "source": {"version": "2.7.0.Final", "connector": "postgresql", "name": "shop", "db": "shop",
                   "schema": "public", "table": table, "snapshot": "true" if op == "r" else "false",
                   "lsn": lsn, "ts_ms": ts_ms},
    }


def debezium_envelope(table: str, op: str, before: dict | None, after: dict | None, at: datetime, lsn: int) -> dict:
    """One Debezium (PostgreSQL connector) change event value: before/after images, op, source."""
    def image(row):
        return None if row is None else {k: _debezium_value(v) for k, v in row.items()}

    return _envelope(table, op, image(before), image(after), int(at.timestamp() * 1000), lsn)


class ShopSource:
    """The shop at scale `scale` (1.0: 1,000 customers, 200 products, ~300 orders a day)."""

    def __init__(self, seed: int = 42, scale: float = 1.0, start_date: date = date(2024, 1, 1)):
        self.seed, self.scale, self.start_date = seed, scale, start_date
        self.n_customers = max(10, int(1000 * scale))
        self.n_products = max(5, int(200 * scale))
        self.orders_per_day = max(5, int(300 * scale))
        self.new_customers_per_day = max(1, int(10 * scale))

    # -- helpers ---------------------------------------------------------------------------
    def day_for(self, logical_day: str) -> str:
        """The shop day a run works on: its logical date, or opening day for dates before it."""
        return max(logical_day, self.start_date.isoformat())

    def _day_index(self, day: date | str) -> int:
        day = date.fromisoformat(day) if isinstance(day, str) else day
        index = (day - self.start_date).days
        if index < 0:
            raise ValueError(f"day {day} is before the shop opened ({self.start_date})")
        return index

    def _rng(self, *parts: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, int(self.scale * 1000), *parts])

    def _day(self, index: int) -> date:
        return self.start_date + timedelta(days=index)

    def _time(self, index: int, seconds: float) -> datetime:
        base = datetime.combine(self._day(index), datetime.min.time(), tzinfo=timezone.utc)
        return base + timedelta(seconds=float(seconds))

    def _lsn(self, index: int, seq: int) -> int:
        return (index + 1) * 10_000_000 + seq

    def _new_customer(self, draws: _ScalarDraws, customer_id: int, at: datetime) -> _Customer:
        first, last = FIRST[draws.integers(len(FIRST))], LAST[draws.integers(len(LAST))]
        city = CITIES[draws.integers(len(CITIES))]
        return _Customer(customer_id, f"{first} {last}", f"{first}.{last}{customer_id}@example.com".lower(),
                         city, COUNTRY[city], SEGMENTS[draws.integers(len(SEGMENTS))], at, at)

    # -- reference data --------------------------------------------------------------------
    def products(self) -> pa.Table:
        rng = self._rng(1)
        rows = []
        for pid in range(1, self.n_products + 1):
            category = CATEGORIES[rng.integers(len(CATEGORIES))]
            rows.append({
                "product_id": pid, "name": f"{category.title()} item {pid}", "category": category,
                "price": Decimal(str(round(float(rng.uniform(2, 400)), 2))).quantize(Decimal("0.01")),
                "updated_at": self._time(0, 0),
            })
        return pa.Table.from_pylist(rows, schema=pa.schema([
            ("product_id", pa.int64()), ("name", pa.string()), ("category", pa.string()),
            ("price", pa.decimal128(10, 2)), ("updated_at", pa.timestamp("us", tz="UTC"))]))

    def _customers_and_changes(self, index: int) -> tuple[dict[int, _Customer], tuple[dict, ...]]:
        """Customer state at the end of day `index` and that day's Debezium envelopes.

        Computed forward from the opening day (each day depends on the state before it): the
        newest two days' states and changes are kept per instance (a first delivery simulates
        years of days, in place on one state, to snapshot the state the day before and send
        the changes of the day).
        """
        cache = self.__dict__.setdefault("_days", {"index": -1, "states": {}, "changes": {}})
        if index not in cache["states"] and index < cache["index"]:
            cache.update(index=-1, states={}, changes={})  # an older day's state: simulate again
        if index > cache["index"]:
            with bulk_build():
                self._simulate_days(cache, index)
        return cache["states"][index], tuple(self._customer_envelope(*change) for change in cache["changes"][index])

    def _simulate_days(self, cache: dict, index: int) -> None:
        """Advance the cache of `_customers_and_changes` from its newest day to day `index`."""
        state = dict(cache["states"].get(cache["index"]) or {})  # simulated on in place
        live = np.array(sorted(state), dtype=np.int64)  # its ids, ascending, kept up to date
        for day in range(cache["index"] + 1, index + 1):
            if day == index:
                cache["states"] = {day - 1: dict(state) if day else None}
            changes, live = self._simulate_day(day, state, live)
            cache["changes"] = {day - 1: cache["changes"].get(day - 1), day: changes}
        cache["states"][index], cache["index"] = state, index

    def _simulate_day(self, index: int, state: dict[int, _Customer], live: np.ndarray) -> tuple[tuple, np.ndarray]:
        """Day `index`'s customer changes, applied to `state` (the day before's, updated in
        place) and returned with the ids then alive (`live`: the day before's, ascending)."""
        if index == 0:
            draws = _ScalarDraws(self._rng(2, 0), 2 * self.n_customers)
            at = self._time(0, 0)
            state.update((cid, self._new_customer(draws, cid, at)) for cid in range(1, self.n_customers + 1))
            return tuple(("r", None, c, 0, seq) for seq, c in enumerate(state.values())), np.array(sorted(state))
        rng = self._rng(2, index)
        base = self._time(index, 0)
        changes: list[tuple] = []  # (op, before, after, day, seq): envelopes when asked for (_customer_envelope)
        picks = rng.choice(live, size=min(len(live), max(1, int(0.02 * len(live)))), replace=False)
        draws = _ScalarDraws(rng, 2 * len(picks) + 3 * self.new_customers_per_day + 8)  # rng's next scalar draws
        for seq, before in enumerate(map(state.__getitem__, picks.tolist())):
            at = base + timedelta(seconds=draws.uniform(86_399))
            customer_id, name, email, city, country, segment, created_at, _ = before
            field = draws.integers(4)  # city, segment, email, name
            if field == 0:
                city = CITIES[draws.integers(len(CITIES))]
                country = COUNTRY[city]
            elif field == 1:
                segment = SEGMENTS[draws.integers(len(SEGMENTS))]
            elif field == 2:
                email = f"c{customer_id}.{index}@example.org"
            else:  # a spelling correction (SCD type 1 material)
                name = name.upper()
            after = state[customer_id] = _Customer(customer_id, name, email, city, country, segment, created_at, at)
            changes.append(("u", before, after, index, seq))
        seq = len(changes)
        first_new = self.n_customers + (index - 1) * self.new_customers_per_day + 1
        for cid in range(first_new, first_new + self.new_customers_per_day):
            customer = self._new_customer(draws, cid, base + timedelta(seconds=draws.uniform(86_399)))
            state[cid] = customer
            changes.append(("c", None, customer, index, seq))
            seq += 1
        live = np.concatenate([live, np.arange(first_new, first_new + self.new_customers_per_day, dtype=np.int64)])
        if index % 3 == 0:  # now and then a customer closes their account
            draws.sync()
            gone = int(rng.choice(live))
            changes.append(("d", state.pop(gone), None, index, seq))
            live = live[live != gone]  # ids are unique
        return tuple(changes), live  # in LSN order: seq only grows

    def _customer_envelope(self, op: str, before: _Customer | None, after: _Customer | None, index: int, seq: int) -> dict:
        at = (after or before).updated_at if op != "d" else self._time(index, 86_000)
        return debezium_envelope("customers", op, before.row() if before else None,
                                 after.row() if after else None, at, self._lsn(index, seq))

    def customers(self, day: date | str | None = None) -> pa.Table:
        """Customer state at the end of `day` (default: opening day)."""
        state, _ = self._customers_and_changes(self._day_index(day) if day else 0)
        return pa.Table.from_pylist([c.row() for c in state.values()], schema=pa.schema([
            ("customer_id", pa.int64()), ("name", pa.string()), ("email", pa.string()), ("city", pa.string()),
            ("country", pa.string()), ("segment", pa.string()),
            ("created_at", pa.timestamp("us", tz="UTC")), ("updated_at", pa.timestamp("us", tz="UTC"))]))

    def snapshot(self, table: str, day: date | str, history_days: int = 120) -> list[dict]:
        """Debezium's initial snapshot (op 'r') of `table` as it stood when `day` began: what a
        connector started on `day` sends before streaming. Orders: those of the `history_days`
        days before `day`, in their final status (the history an ML model learns from)."""
        with bulk_build():
            return self._snapshot(table, day, history_days)

    def _snapshot(self, table: str, day: date | str, history_days: int) -> list[dict]:
        index = self._day_index(day)
        if table == "orders":  # built column-wise: tens of thousands of rows
            days = [self.orders(self._day(i)) for i in range(max(0, index - history_days), index)]
            orders = pa.concat_tables(days) if days else ORDER_SCHEMA.empty_table()
            return [_envelope(table, "r", None, image, ts_ms, self._lsn(index - 1, 9_000_000 + seq))
                    for seq, (image, ts_ms) in enumerate(zip(_debezium_images(orders),
                                                             _timestamp_times(orders.column("placed_at"), 1000)))]
        elif table == "customers":
            state = self._customers_and_changes(index - 1)[0] if index else {}
            rows = [c.row() for c in state.values()] if index else []
        elif table == "products":
            rows = self.products().to_pylist() if index else []
        else:
            raise ValueError(f"the shop snapshots customers, products and orders, not '{table}'")
        # LSNs at the very end of the day before: older than anything streamed on `day`
        envelopes = [debezium_envelope(table, "r", None, row, row["updated_at"], self._lsn(index - 1, 9_000_000 + seq))
                     for seq, row in enumerate(rows)]
        return envelopes  # plain JSON values already (debezium_envelope): no JSON round trip needed

    def customer_changes(self, day: date | str) -> list[dict]:
        """Debezium envelopes of the customers table for `day` (day 0: the snapshot, op 'r')."""
        return [json.loads(json.dumps(e)) for e in self._customers_and_changes(self._day_index(day))[1]]

    def order_changes(self, day: date | str) -> list[dict]:
        """Debezium envelopes of the orders table for `day`: a create when an order is placed
        (status 'placed') and an update when it reaches its final status, in LSN order."""
        index = self._day_index(day)
        rng = self._rng(8, index)
        events = []
        for row in self.orders(day).to_pylist():
            placed = {**row, "status": "placed"}
            events.append((row["placed_at"], "c", None, placed))
            if row["status"] != "placed":
                events.append((row["placed_at"] + timedelta(minutes=float(rng.uniform(1, 600))), "u", placed, row))
        events.sort(key=lambda e: e[0])
        return [debezium_envelope("orders", op, before, after, at, self._lsn(index, 5_000_000 + seq))
                for seq, (at, op, before, after) in enumerate(events)]

    def product_changes(self, day: date | str) -> list[dict]:
        """Debezium envelopes of the products table: the snapshot on day 0, price changes after."""
        index = self._day_index(day)
        products = self.products().to_pylist()
        if index == 0:
            return [debezium_envelope("products", "r", None, p, p["updated_at"], self._lsn(0, 8_000_000 + i))
                    for i, p in enumerate(products)]
        rng = self._rng(9, index)
        changes = []
        for seq, pid in enumerate(sorted(rng.choice(len(products), max(1, len(products) // 50), replace=False))):
            before = products[int(pid)]
            at = self._time(index, rng.uniform(0, 86_399))
            factor = Decimal(str(round(float(rng.uniform(0.8, 1.2)), 2)))
            factor = factor if factor != 1 else Decimal("1.05")  # an update always changes the price
            price = (before["price"] * factor).quantize(Decimal("0.01"))
            changes.append(debezium_envelope("products", "u", before, {**before, "price": price, "updated_at": at},
                                             at, self._lsn(index, 8_000_000 + seq)))
        return changes

    # -- facts -----------------------------------------------------------------------------
    def orders(self, day: date | str) -> pa.Table:
        index = self._day_index(day)
        rng = self._rng(3, index)
        # customers that exist by this day (ids are never reused); O(1) in the day number
        customer_ids = np.arange(1, self.n_customers + index * self.new_customers_per_day + 1)
        n = int(self.orders_per_day * rng.uniform(0.8, 1.2))
        seconds = np.sort(rng.uniform(0, 86_399, n))
        items = rng.integers(1, 6, n)
        amounts = np.round(rng.gamma(2.0, 35.0, n) * items / 2 + 1, 2)
        statuses = rng.choice(STATUSES, n, p=[0.1, 0.2, 0.25, 0.4, 0.05])
        midnight = self._time(index, 0)
        return pa.table({
            "order_id": pa.array([index * 100_000 + i + 1 for i in range(n)], pa.int64()),
            "customer_id": pa.array(rng.choice(customer_ids, n, p=_activity(customer_ids)), pa.int64()),
            "order_date": pa.array([self._day(index)] * n, pa.date32()),
            "placed_at": pa.array([midnight + timedelta(seconds=float(s)) for s in seconds], pa.timestamp("us", tz="UTC")),
            "status": pa.array(statuses.tolist(), pa.string()),
            "amount": pa.array([Decimal(f"{a:.2f}") for a in amounts], pa.decimal128(12, 2)),
            "currency": pa.array(["EUR"] * n, pa.string()),
            "items": pa.array(items, pa.int32()),
        }, schema=ORDER_SCHEMA)

    def order_items(self, day: date | str) -> pa.Table:
        orders = self.orders(day)
        rng = self._rng(4, self._day_index(day))
        prices = {r["product_id"]: r["price"] for r in self.products().to_pylist()}
        rows = []
        for order_id, count in zip(orders.column("order_id").to_pylist(), orders.column("items").to_pylist()):
            for line in range(1, count + 1):
                pid = int(rng.integers(1, self.n_products + 1))
                rows.append({"order_id": order_id, "line_no": line, "product_id": pid,
                             "quantity": int(rng.integers(1, 4)), "unit_price": prices[pid]})
        return pa.Table.from_pylist(rows, schema=pa.schema([
            ("order_id", pa.int64()), ("line_no", pa.int32()), ("product_id", pa.int64()),
            ("quantity", pa.int32()), ("unit_price", pa.decimal128(10, 2))]))

    def payments(self, day: date | str) -> pa.Table:
        orders = self.orders(day).filter(pa.compute.not_equal(self.orders(day).column("status"), "placed"))
        rng = self._rng(5, self._day_index(day))
        n = orders.num_rows
        placed = orders.column("placed_at").to_pylist()
        return pa.table({
            "payment_id": orders.column("order_id"),
            "order_id": orders.column("order_id"),
            "method": pa.array(rng.choice(PAYMENT_METHODS, n).tolist(), pa.string()),
            "amount": orders.column("amount"),
            "paid_at": pa.array([p + timedelta(minutes=float(rng.uniform(1, 90))) for p in placed],
                                pa.timestamp("us", tz="UTC")),
        })

    def order_events(self, day: date | str) -> list[dict]:
        """Order lifecycle events (placed -> paid -> shipped -> delivered), for Kafka."""
        index = self._day_index(day)
        rng = self._rng(6, index)
        events = []
        for row in self.orders(day).to_pylist():
            steps = {"placed": 1, "paid": 2, "shipped": 3, "delivered": 4, "cancelled": 2}[row["status"]]
            at = row["placed_at"]
            for step in range(steps):
                kind = "order_cancelled" if row["status"] == "cancelled" and step == 1 else EVENT_FLOW[step]
                events.append({
                    "event_id": f"{row['order_id']}-{step}", "order_id": row["order_id"],
                    "customer_id": row["customer_id"], "event_type": kind,
                    "event_time": at.isoformat(), "amount": str(row["amount"]),
                })
                at = at + timedelta(minutes=float(rng.uniform(5, 600)))
        return events

    # -- landing files ---------------------------------------------------------------------
    def write_landing_file(self, folder: str | Path, day: date | str, fmt: str = "csv",
                           malformed_share: float = 0.02, overwrite: bool = True) -> tuple[Path, int]:
        """Write the day's orders as `orders_<day>.<fmt>` into `folder` (an existing file is
        left alone unless `overwrite`: a source never re-uploads what it already delivered).

        A share of rows is malformed the way real files are (unparseable amount, missing
        key, bad date; for Parquet, which types every column: null keys and negative
        amounts). Returns (path, number of malformed rows).
        """
        index = self._day_index(day)
        orders = self.orders(day)
        rng = self._rng(7, index)
        bad = set(rng.choice(orders.num_rows, int(round(orders.num_rows * malformed_share)), replace=False).tolist())
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"orders_{self._day(index).isoformat()}.{ 'jsonl' if fmt == 'json' else fmt}"
        if path.exists() and not overwrite:
            return path, len(bad)
        rows = orders.to_pylist()
        if fmt == "parquet":
            for i in bad:
                rows[i] = {**rows[i], **([{"order_id": None}, {"amount": Decimal("-1.00")}][i % 2])}
            import pyarrow.parquet as pq

            tmp = _in_progress_name(path)
            pq.write_table(pa.Table.from_pylist(rows, schema=ORDER_SCHEMA), tmp)
            _publish(tmp, path)
            return path, len(bad)
        text = io.StringIO()
        if fmt == "csv":
            writer = csv.DictWriter(text, fieldnames=ORDER_SCHEMA.names)
            writer.writeheader()
            for i, row in enumerate(rows):
                row = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
                if i in bad:
                    row = {**row, **[{"amount": "n/a"}, {"order_id": ""}, {"order_date": "2024-13-45"}][i % 3]}
                writer.writerow(row)
        elif fmt == "json":
            for i, row in enumerate(rows):
                line = json.dumps(row, default=str)
                text.write((line[: len(line) // 2] if i in bad else line) + "\n")  # bad: truncated JSON
        else:
            raise ValueError(f"unknown landing format '{fmt}': use csv, json or parquet")
        tmp = _in_progress_name(path)
        tmp.write_text(text.getvalue())
        _publish(tmp, path)
        return path, len(bad)
