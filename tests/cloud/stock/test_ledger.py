"""The stock ledger on SQLite and PostgreSQL: each source booked once, stock always the
sum of its entries, concurrent bookings ordered by version, listeners after commit."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.db.engine import Database
from cloud.stock.ledger import LedgerEntry, LedgerError, StockLedger
from tests.cloud.orders.order_fixtures import fresh_database

COLA = "6901234567892"
CHIPS = "6920000000017"

# One operation: (barcode, delta or target quantity, source, set_quantity?)
operations = st.lists(
    st.tuples(
        st.sampled_from([COLA, CHIPS, "4006381333931"]),
        st.integers(min_value=-40, max_value=40),
        st.sampled_from([f"event:{n}" for n in range(12)]),
        st.booleans(),
    ),
    max_size=30,
)


async def check_ops(db: Database, ops: list[tuple[str, int, str, bool]]) -> None:
    ledger = StockLedger(db)
    store = f"s-{uuid.uuid4().hex[:10]}"
    booked: set[str] = set()
    model: dict[str, int] = {}
    for barcode, n, source, absolute in ops:
        if absolute:
            entry = await ledger.set_quantity(store, barcode, n, "adjust", source)
        else:
            entry = await ledger.record(store, barcode, n, "sale", source)
        if source in booked:
            assert entry is None, f"{source} booked twice"
            continue
        booked.add(source)
        assert entry is not None
        model[barcode] = n if absolute else model.get(barcode, 0) + n
        assert entry.qty_after == model[barcode]
    assert await ledger.quantities(store) == {b: q for b, q in model.items()}
    for barcode, qty in model.items():
        assert await ledger.quantity(store, barcode) == qty
        history = await ledger.entries(store, barcode, limit=1000)
        assert sum(e.delta for e in history) == qty
        # Oldest first: versions 1..n, each qty_after the running sum.
        running = 0
        for version, e in enumerate(reversed(history), start=1):
            running += e.delta
            assert (e.version, e.qty_after) == (version, running)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=operations)
def test_stock_is_the_sum_of_entries_each_source_booked_once(
    db_url: str, ops: list[tuple[str, int, str, bool]]
) -> None:
    async def run() -> None:
        db = await Database.open(db_url)
        try:
            await check_ops(db, ops)
        finally:
            await db.close()

    asyncio.run(run())


async def test_concurrent_bookings_get_distinct_versions_in_quantity_order(db_url: str) -> None:
    async with fresh_database(db_url) as db:
        ledger = StockLedger(db)
        deltas = [(-1) ** n * (n % 7 + 1) for n in range(60)]
        entries = await asyncio.gather(
            *(ledger.record("s1", COLA, d, "sale", f"event:{n}") for n, d in enumerate(deltas))
        )
        assert all(e is not None for e in entries)
        ordered = sorted((e for e in entries if e is not None), key=lambda e: e.version)
        assert [e.version for e in ordered] == list(range(1, 61))
        running = 0
        for e in ordered:
            running += e.delta
            assert e.qty_after == running
        assert await ledger.quantity("s1", COLA) == sum(deltas)
        # A replay of all of them at once books nothing.
        again = await asyncio.gather(
            *(ledger.record("s1", COLA, d, "sale", f"event:{n}") for n, d in enumerate(deltas))
        )
        assert again == [None] * 60
        assert await ledger.quantity("s1", COLA) == sum(deltas)


async def test_sources_are_per_store_and_listeners_hear_after_commit(db_url: str) -> None:
    async with fresh_database(db_url) as db:
        ledger = StockLedger(db)
        heard: list[tuple[str, str, int, LedgerEntry, int]] = []

        async def listener(store: str, barcode: str, qty: int, entry: LedgerEntry) -> None:
            # After the commit: a fresh read already sees the entry.
            heard.append((store, barcode, qty, entry, await ledger.quantity(store, barcode)))

        async def broken(*_: object) -> None:
            raise RuntimeError("a broken listener does not stop the others")

        ledger.on_change(broken)
        ledger.on_change(listener)
        await ledger.record("s1", COLA, 10, "restock", "delivery:1")
        await ledger.record("s2", COLA, 3, "restock", "delivery:1")  # another store: booked
        assert await ledger.record("s1", COLA, 10, "restock", "delivery:1") is None
        taken = await ledger.set_quantity("s1", COLA, 7, "adjust", "stocktake:1")
        assert taken is not None and taken.delta == -3
        assert [(h[0], h[2], h[4]) for h in heard] == [("s1", 10, 10), ("s2", 3, 3), ("s1", 7, 7)]
        assert await ledger.quantity("s1", "0000000000000") == 0


async def test_bad_movements_are_refused_and_book_nothing(db_url: str) -> None:
    async with fresh_database(db_url) as db:
        ledger = StockLedger(db)
        with pytest.raises(LedgerError, match="unknown stock reason"):
            await ledger.record("s1", COLA, -1, "stolen", "event:1")
        with pytest.raises(LedgerError, match="barcode"):
            await ledger.record("s1", "", -1, "sale", "event:1")
        with pytest.raises(LedgerError, match="source"):
            await ledger.record("s1", COLA, -1, "sale", "")
        assert await ledger.entries("s1") == []
        assert await ledger.record("s1", COLA, -1, "sale", "event:1") is not None
