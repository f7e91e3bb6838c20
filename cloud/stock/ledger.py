"""The stock ledger: every movement of a store's stock is an entry, stock is their sum.

    ledger = StockLedger(db)
    ledger.on_change(callback)                          # (store, barcode, qty_after, entry)
    await ledger.record("demo-001", "6901234567892", -1, "sale", "event:01J...")
    await ledger.record(...same source...)              # None: booked already
    await ledger.set_quantity("demo-001", "6901234567892", 24, "adjust", "stocktake:2025-01-02")
    await ledger.quantity("demo-001", "6901234567892")  # 24

    async with ledger.transaction() as booking:         # several movements, one transaction
        await booking.book(store, barcode, -2, "pickup", "order:meituan-1:pickup:690...")

Each entry names its `source`, unique per store, so a replayed event, order change or
request books nothing the second time. The running quantity per item (stock_levels) is
updated in the entry's transaction, so reads never sum the ledger. Its row is locked
(SELECT ... FOR UPDATE) at the item's first movement in a transaction, which orders
concurrent bookings of one item and gives each a `version` (1, 2, 3...) that says which
quantity is the newer one; a transaction moving several items locks them in barcode
order (Booking.current) so two never wait on each other. Listeners hear of each entry
after its transaction is committed, in booking order.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.engine import Database
from cloud.db.times import now_text
from cloud.stock.tables import stock_entries, stock_levels

log = logging.getLogger("cloud.stock.ledger")

REASONS = frozenset(
    {
        "sale",
        "pickup",
        "refund_restore",
        "restock",
        "adjust",
        "vend",
        "locker",
        "manual",
        "erp",
        "restore",
    }
)
MAX_BARCODE = 64
MAX_SOURCE = 200
MAX_QTY = 10**9


class LedgerError(ValueError):
    """A movement the ledger cannot book (unknown reason, bad barcode); nothing booked."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    store: str
    barcode: str
    delta: int
    reason: str
    source: str
    qty_after: int
    version: int
    at: str
    note: str = ""
    ref: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "store": self.store,
            "barcode": self.barcode,
            "delta": self.delta,
            "reason": self.reason,
            "source": self.source,
            "qty_after": self.qty_after,
            "version": self.version,
            "at": self.at,
            "note": self.note,
            "ref": self.ref,
        }

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> LedgerEntry:
        return cls(
            id=int(row["id"]),
            store=row["store_id"],
            barcode=row["barcode"],
            delta=int(row["delta"]),
            reason=row["reason"],
            source=row["source"],
            qty_after=int(row["qty_after"]),
            version=int(row["version"]),
            at=row["at"],
            note=row["note"],
            ref=row["ref"],
        )


ChangeCallback = Callable[[str, str, int, LedgerEntry], Awaitable[None]]


def check_movement(barcode: str, delta: int, reason: str, source: str) -> None:
    if reason not in REASONS:
        raise LedgerError(f"unknown stock reason {reason!r}: one of {', '.join(sorted(REASONS))}")
    if not barcode or len(barcode) > MAX_BARCODE or not barcode.isprintable():
        raise LedgerError(f"a barcode must be 1-{MAX_BARCODE} printable characters")
    if not source or len(source) > MAX_SOURCE:
        raise LedgerError(f"a stock movement's source must be 1-{MAX_SOURCE} characters")
    if isinstance(delta, bool) or not isinstance(delta, int) or abs(delta) > MAX_QTY:
        raise LedgerError(f"a stock movement is a whole number of units, at most {MAX_QTY}")


class Booking:
    """Movements booked in one open transaction (StockLedger.transaction).

    Each item's level row is read and locked once, at its first movement; the movements
    are then counted here and the rows written once, when the transaction ends (flush):
    one statement per movement, however many movements of one item a batch holds."""

    def __init__(self, db: Database, conn: AsyncConnection) -> None:
        self.db = db
        self.conn = conn
        self.booked: list[LedgerEntry] = []
        self._levels: dict[tuple[str, str], list[int]] = {}  # [qty, version], locked
        self._moved: set[tuple[str, str]] = set()

    async def current(self, store: str, barcode: str) -> int:
        """The item's quantity, its row locked until the transaction ends (PostgreSQL;
        SQLite has one writer anyway), so what is decided from it stays true."""
        return (await self._level(store, barcode))[0]

    async def _level(self, store: str, barcode: str) -> list[int]:
        key = (store, barcode)
        level = self._levels.get(key)
        if level is not None:
            return level
        query = (
            select(stock_levels.c.qty, stock_levels.c.version)
            .where(stock_levels.c.store_id == store, stock_levels.c.barcode == barcode)
            .with_for_update()
        )
        row = (await self.conn.execute(query)).first()
        if row is None:
            # Another transaction may make the row at the same moment: do nothing then.
            await self.conn.execute(
                self.db.insert(stock_levels)
                .values(store_id=store, barcode=barcode, qty=0, version=0, updated_at=now_text())
                .on_conflict_do_nothing(
                    index_elements=[stock_levels.c.store_id, stock_levels.c.barcode]
                )
            )
            row = (await self.conn.execute(query)).one()
        level = self._levels[key] = [int(row[0]), int(row[1])]
        return level

    async def book(
        self,
        store: str,
        barcode: str,
        delta: int,
        reason: str,
        source: str,
        *,
        note: str = "",
        ref: str = "",
    ) -> LedgerEntry | None:
        """Book one movement; None when `source` was booked for the store already."""
        check_movement(barcode, delta, reason, source)
        level = await self._level(store, barcode)
        qty, version = level[0] + delta, level[1] + 1
        now = now_text()
        inserted = await self.conn.execute(
            self.db.insert(stock_entries)
            .values(
                store_id=store,
                barcode=barcode,
                delta=delta,
                reason=reason,
                source=source,
                ref=ref[:128],
                note=note[:2000],
                qty_after=qty,
                version=version,
                at=now,
            )
            .on_conflict_do_nothing(
                index_elements=[stock_entries.c.store_id, stock_entries.c.source]
            )
            .returning(stock_entries.c.id)
        )
        entry_id = inserted.scalar()
        if entry_id is None:
            return None
        level[0], level[1] = qty, version
        self._moved.add((store, barcode))
        entry = LedgerEntry(
            int(entry_id), store, barcode, delta, reason, source, qty, version, now, note, ref
        )
        self.booked.append(entry)
        return entry

    async def set_quantity(
        self, store: str, barcode: str, qty: int, reason: str, source: str, *, note: str = ""
    ) -> LedgerEntry | None:
        if isinstance(qty, bool) or not isinstance(qty, int) or abs(qty) > MAX_QTY:
            raise LedgerError(f"a quantity is a whole number of units, at most {MAX_QTY}")
        check_movement(barcode, 0, reason, source)
        current = await self.current(store, barcode)
        return await self.book(store, barcode, qty - current, reason, source, note=note)

    async def moved_for(self, store: str, ref: str, reasons: Collection[str]) -> dict[str, int]:
        """Units taken out per barcode by entries of `ref` with these reasons."""
        query = (
            select(stock_entries.c.barcode, func.sum(stock_entries.c.delta))
            .where(
                stock_entries.c.store_id == store,
                stock_entries.c.ref == ref,
                stock_entries.c.reason.in_(list(reasons)),
            )
            .group_by(stock_entries.c.barcode)
        )
        rows = (await self.conn.execute(query)).all()
        return {barcode: -int(total or 0) for barcode, total in rows}

    async def flush(self) -> None:
        """Write the moved items' levels (before the commit)."""
        if not self._moved:
            return
        now = now_text()
        await self.conn.execute(
            update(stock_levels)
            .where(
                stock_levels.c.store_id == bindparam("b_store"),
                stock_levels.c.barcode == bindparam("b_barcode"),
            )
            .values(qty=bindparam("b_qty"), version=bindparam("b_version"), updated_at=now),
            [
                {
                    "b_store": store,
                    "b_barcode": barcode,
                    "b_qty": self._levels[(store, barcode)][0],
                    "b_version": self._levels[(store, barcode)][1],
                }
                for store, barcode in sorted(self._moved)
            ],
        )
        self._moved.clear()


class StockLedger:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._callbacks: list[ChangeCallback] = []

    def on_change(self, callback: ChangeCallback) -> None:
        """`callback(store, barcode, qty_after, entry)` after each booked entry is
        committed. A failing callback is logged and does not stop the others."""
        self._callbacks.append(callback)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Booking]:
        """Book several movements in one transaction; listeners hear of them after it."""
        async with self.db.write() as conn:
            booking = Booking(self.db, conn)
            yield booking
            await booking.flush()
        await self._notify(booking.booked)

    async def record(
        self,
        store: str,
        barcode: str,
        delta: int,
        reason: str,
        source: str,
        *,
        note: str = "",
        ref: str = "",
    ) -> LedgerEntry | None:
        """Book `delta` units; None when `source` was already booked for that store."""
        check_movement(barcode, delta, reason, source)
        async with self.transaction() as booking:
            return await booking.book(store, barcode, delta, reason, source, note=note, ref=ref)

    async def set_quantity(
        self, store: str, barcode: str, qty: int, reason: str, source: str, *, note: str = ""
    ) -> LedgerEntry | None:
        """Book what brings the item to `qty` (a stock-take "adjust", the ERP's "erp")."""
        async with self.transaction() as booking:
            return await booking.set_quantity(store, barcode, qty, reason, source, note=note)

    async def quantity(self, store: str, barcode: str) -> int:
        query = select(stock_levels.c.qty).where(
            stock_levels.c.store_id == store, stock_levels.c.barcode == barcode
        )
        async with self.db.read() as conn:
            qty = (await conn.execute(query)).scalar()
        return 0 if qty is None else int(qty)

    async def quantities(self, store: str) -> dict[str, int]:
        # A row of version 0 was only locked, never booked: no stock known.
        query = select(stock_levels.c.barcode, stock_levels.c.qty).where(
            stock_levels.c.store_id == store, stock_levels.c.version > 0
        )
        async with self.db.read() as conn:
            return {b: int(q) for b, q in (await conn.execute(query)).all()}

    async def levels(self, store: str, barcodes: Collection[str]) -> dict[str, tuple[int, int]]:
        """(qty, version) of these items (those with any entry)."""
        query = select(stock_levels.c.barcode, stock_levels.c.qty, stock_levels.c.version).where(
            stock_levels.c.store_id == store,
            stock_levels.c.barcode.in_(list(barcodes)),
            stock_levels.c.version > 0,
        )
        async with self.db.read() as conn:
            return {b: (int(q), int(v)) for b, q, v in (await conn.execute(query)).all()}

    async def entries(
        self, store: str, barcode: str | None = None, limit: int = 100
    ) -> list[LedgerEntry]:
        """The newest `limit` entries (of one item, or all), newest first."""
        query = select(stock_entries).where(stock_entries.c.store_id == store)
        if barcode is not None:
            query = query.where(stock_entries.c.barcode == barcode)
        query = query.order_by(stock_entries.c.id.desc()).limit(limit)
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [LedgerEntry.from_row(r) for r in rows]

    async def entries_for(self, store: str, ref: str) -> list[LedgerEntry]:
        """Every entry of one order (`ref`), oldest first."""
        query = (
            select(stock_entries)
            .where(stock_entries.c.store_id == store, stock_entries.c.ref == ref)
            .order_by(stock_entries.c.id)
        )
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [LedgerEntry.from_row(r) for r in rows]

    async def _notify(self, booked: list[LedgerEntry]) -> None:
        for entry in booked:
            for callback in list(self._callbacks):
                try:
                    await callback(entry.store, entry.barcode, entry.qty_after, entry)
                except Exception:
                    log.exception(
                        "stock listener failed",
                        extra={"store": entry.store, "barcode": entry.barcode},
                    )
