"""The shop's output is frozen: every message it publishes (topic, key, value byte for byte, in
order) and the tables it generates stay exactly what they were when these digests were recorded
(from the generator before its speed-ups, issue #18). A lakehouse fed by an older release must see
the same shop on a rerun, so a change here is a change of the source's data, never a refactoring."""

from __future__ import annotations

import hashlib
import json

import pytest

from include.lakehouse.source.generator import ShopSource
from include.lakehouse.source.producer import published_topics, shop_messages


def _messages_digest(day: str, scale: float, snapshot: bool) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    for topic in published_topics():
        for key, value in shop_messages(topic, day, scale=scale, snapshot=snapshot):
            h.update(repr((topic, key, value)).encode())
            n += 1
    return h.hexdigest(), n


@pytest.mark.parametrize("day, scale, snapshot, digest, count", [
    ("2024-01-01", 0.1, True, "2cc7f7292787bc560e15cfa15a8e7f42446bba64946c113dcc39bcc450d42b54", 237),
    ("2024-01-04", 0.1, True, "db63fa9ae2af515fabfef740b5405479ea13f2920b98c2c72d9b3764eeda197d", 345),
    ("2024-01-07", 0.1, False, "f1e74888386d0157cd598266e32cff4aca941848b9714e3c93dabd115a5751c3", 128),
    ("2024-02-15", 0.1, True, "45b1c8ca6151b55035640b7f4f02a37ecd3879ee5ce3126af768f24be1235c77", 1573),
])
def test_published_messages_are_unchanged(day, scale, snapshot, digest, count):
    assert _messages_digest(day, scale, snapshot) == (digest, count)


def test_demo_first_day_messages_are_unchanged():
    """A first delivery years after opening day, as in the demo (~1,070 simulated days)."""
    assert _messages_digest("2026-12-07", 1.0, True) == (
        "08bc81c7a4959d58ff7387c780ef9d7ad7ee0abb42fe5242bd73400fde4a2d58", 48483)


def _shop_digest(seed: int, scale: float, days: list[str]) -> str:
    shop, h = ShopSource(seed=seed, scale=scale), hashlib.sha256()
    for day in days:
        for part in (shop.customer_changes(day), shop.order_changes(day), shop.product_changes(day),
                     shop.order_events(day), *(shop.snapshot(t, day) for t in ("customers", "orders", "products"))):
            h.update(json.dumps(part, sort_keys=False).encode())
        for table in (shop.customers(day), shop.orders(day), shop.order_items(day), shop.payments(day)):
            h.update(repr(table.to_pylist()).encode())
    return h.hexdigest()


def test_other_seed_scale_and_day_order_are_unchanged():
    """Another seed and scale, days asked out of order (a state cache must not leak between them)."""
    days = ["2024-01-03", "2024-01-01", "2024-01-10", "2024-01-09", "2024-01-02"]
    assert _shop_digest(7, 0.05, days) == "afbd83d0a07d3e7f8d0512243129da6076c27331dbec1f0398c0cc18bfdfa313"


def test_scalar_draws_replay_the_generator():
    """The customer simulation's scalar draws (made from the raw stream, in bulk) are the
    Generator's own, in any interleaving, and leave it where its own calls would have."""
    import numpy as np

    from include.lakehouse.source.generator import _ScalarDraws

    plan = np.random.default_rng(0).integers(0, 5, 5_000).tolist()  # which draw comes next
    sizes = [4, 16, 3, 7, 3_000_000_019]  # the last: Lemire rejects ~30% of draws

    def draw(source, kind):
        return source.uniform(0, 86_399) if kind == 0 else int(source.integers(sizes[kind - 1]))

    for warmup in (0, 1):  # the Generator may hold half of a raw draw from a bounded integer before
        reference, emulated = np.random.default_rng([42, 1000, 2, 9]), np.random.default_rng([42, 1000, 2, 9])
        for rng in (reference, emulated):
            rng.choice(np.arange(1, 12_000), size=warmup * 239, replace=False)
        expected = [draw(reference, k) for k in plan]
        draws = _ScalarDraws(emulated, 100)  # too few: fetches more as it goes
        got = [draws.uniform(86_399) if k == 0 else draws.integers(sizes[k - 1]) for k in plan]
        assert got == expected
        draws.sync()
        assert emulated.choice(np.arange(50_000), 7).tolist() == reference.choice(np.arange(50_000), 7).tolist()
        assert emulated.integers(3, size=9).tolist() == reference.integers(3, size=9).tolist()


def test_column_wise_timestamps_round_like_datetime_timestamp():
    """Snapshot images built column-wise encode times exactly as `int(dt.timestamp() * f)` does,
    float rounding included."""
    from datetime import datetime, timedelta, timezone

    import numpy as np
    import pyarrow as pa

    from include.lakehouse.source.generator import _timestamp_times

    micros = np.random.default_rng(3).integers(1_600_000_000_000_000, 1_900_000_000_000_000, 50_000)
    times = [datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=int(m)) for m in micros]
    column = pa.chunked_array([pa.array(times, pa.timestamp("us", tz="UTC"))])
    for factor in (1_000_000, 1000):
        assert _timestamp_times(column, factor) == [int(t.timestamp() * factor) for t in times]
