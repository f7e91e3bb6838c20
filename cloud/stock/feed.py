"""What moves the ledger: the agents' stock.changed events and the platforms' orders.

    feed = StockFeed(ledger, catalog)
    app[EVENT_HOOKS].append(feed.on_events)     # each stock.changed booked once
    order_service.on_change(feed.on_order)      # a pickup books its items once
    await feed.restore(order)                   # 一键恢复库存: the items back, once

The rules (docs/stock.md):
- A `stock.changed` event is booked with source "event:<event id>", so an event the
  agent sends twice moves nothing the second time. Its reason is the agent's (refund:
  refund_restore). The agent writes none for a courier's pickup of a platform order.
- A platform order moves stock when it is picked up: one "pickup" entry per barcode,
  source "order:<id>:pickup:<barcode>". A cancellation before pickup moved nothing and
  books nothing; a refund after pickup books nothing either (the goods left with the
  courier) until the owner restores them.
- An order the store dispensed itself (a locker or vending machine, whose stock.changed
  names the order) is not taken twice: the pickup books only what the store's own
  events have not; an event arriving after the pickup was booked is booked as 0.
- Restore books back what the order took, once per order ("restore", or
  "refund_restore" when the platform refunded it), source "order:<id>:restore:<barcode>".
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import and_, literal, select

from cloud.db.tables import events
from cloud.envelope import Envelope
from cloud.platforms.base import OrderItem
from cloud.stock.catalog import Catalog, SkuListing
from cloud.stock.ledger import LedgerEntry, LedgerError, StockLedger
from cloud.stock.tables import stock_entries

log = logging.getLogger("cloud.stock.feed")

# The agent's reasons (COMMON event shapes) and what the ledger calls them.
AGENT_REASONS = {
    "sale": "sale",
    "vend": "vend",
    "locker": "locker",
    "refund": "refund_restore",
    "restock": "restock",
    "adjust": "adjust",
    "manual": "manual",
}
# Reasons of the store's own events that can fulfil an order (its `order` field).
STORE_FULFILMENT = ("sale", "vend", "locker")
TAKEN = ("pickup", *STORE_FULFILMENT)


class OrderLike(Protocol):
    # Read-only, as a frozen StoredOrder's fields are.
    @property
    def id(self) -> str: ...
    @property
    def store(self) -> str: ...
    @property
    def platform(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def items(self) -> tuple[OrderItem, ...]: ...
    @property
    def refunded_at(self) -> str | None: ...


class RestoreError(ValueError):
    """An order whose stock cannot be restored; the message says why."""


def stock_event(event: Envelope) -> tuple[str, int, str, str, int] | None:
    """(barcode, delta, ledger reason, order ref, delta) of a stock.changed event, or None with
    the problem logged when it cannot be booked."""
    try:
        data = json.loads(event.json).get("data")
    except (ValueError, AttributeError):
        data = None
    data = data if isinstance(data, Mapping) else {}
    barcode, delta, reason = data.get("barcode"), data.get("delta"), data.get("reason")
    order = data.get("order")
    if not isinstance(barcode, str) or not barcode:
        problem = "no barcode"
    elif isinstance(delta, bool) or not isinstance(delta, int):
        problem = "delta is not a whole number"
    elif reason not in AGENT_REASONS:
        problem = f"unknown reason {str(reason)[:20]!r}"
    else:
        ref = order if isinstance(order, str) else ""
        return barcode, delta, AGENT_REASONS[reason], ref, delta
    log.warning(
        "stock.changed not booked: %s", problem, extra={"store": event.store, "event": event.id}
    )
    return None


class StockFeed:
    def __init__(self, ledger: StockLedger, catalog: Catalog) -> None:
        self.ledger = ledger
        self.catalog = catalog

    async def on_events(self, store: str, events: list[Envelope]) -> None:
        """The event-ingest hook: the batch's stock.changed events, in one transaction."""
        todo = [(e, m) for e in events if e.type == "stock.changed" and (m := stock_event(e))]
        if not todo:
            return
        async with self.ledger.transaction() as booking:
            # Items locked in one order by every booking of several: no deadlocks.
            for barcode in sorted({m[0] for _, m in todo}):
                await booking.current(store, barcode)
            for event, (barcode, delta, reason, ref, sent) in todo:
                note = ""
                if ref and reason in STORE_FULFILMENT:
                    counted = await booking.moved_for(store, ref, ("pickup",))
                    if counted.get(barcode):
                        delta, note = 0, f"{sent} counted by the order's pickup"
                try:
                    await booking.book(
                        store, barcode, delta, reason, f"event:{event.id}", note=note, ref=ref
                    )
                except LedgerError as e:
                    log.warning(
                        "stock.changed not booked: %s", e, extra={"store": store, "event": event.id}
                    )

    async def on_order(self, order: OrderLike, kind: str) -> None:
        """The order-service listener."""
        if kind == "created":
            await self.catalog.learn_skus(
                order.store,
                (
                    SkuListing(order.platform, item.sku, upc=item.barcode, name=item.name)
                    for item in order.items
                    if item.sku and len(item.sku) <= 64
                ),
            )
        elif kind == "picked_up":
            await self.book_pickup(order)

    async def barcodes(self, order: OrderLike) -> dict[str, int]:
        """Units per barcode of the order: an item's barcode, else the product its
        platform SKU is mapped to, else the SKU (as the store was told)."""
        out: dict[str, int] = {}
        for item in order.items:
            barcode = item.barcode
            if not barcode and item.sku:
                barcode = await self.catalog.barcode_of(order.store, order.platform, item.sku)
            barcode = barcode or item.sku
            if barcode:
                out[barcode] = out.get(barcode, 0) + item.qty
        return out

    async def book_pickup(self, order: OrderLike) -> list[LedgerEntry]:
        wanted = await self.barcodes(order)
        async with self.ledger.transaction() as booking:
            for barcode in sorted(wanted):  # one lock order for every booking
                await booking.current(order.store, barcode)
            by_store = await booking.moved_for(order.store, order.id, STORE_FULFILMENT)
            for barcode, qty in sorted(wanted.items()):
                left = max(0, qty - by_store.get(barcode, 0))
                note = f"{qty - left} of {qty} dispensed by the store" if left != qty else ""
                await booking.book(
                    order.store,
                    barcode,
                    -left,
                    "pickup",
                    f"order:{order.id}:pickup:{barcode}",
                    note=note,
                    ref=order.id,
                )
            return list(booking.booked)

    async def restore(self, order: OrderLike, *, by: str = "") -> list[LedgerEntry]:
        """Book the order's goods back on the shelf, once per order; RestoreError when
        the order took nothing (not picked up) or was restored already."""
        if order.status != "picked_up":
            raise RestoreError(f"order {order.id} is {order.status}: no stock left the store")
        reason = "refund_restore" if order.refunded_at else "restore"
        async with self.ledger.transaction() as booking:
            taken = await booking.moved_for(order.store, order.id, TAKEN)
            restored = await booking.moved_for(order.store, order.id, ("restore", "refund_restore"))
            if restored:
                raise RestoreError(f"order {order.id} was restored already")
            for barcode in sorted(taken):
                await booking.current(order.store, barcode)
            for barcode, qty in sorted(taken.items()):
                if qty > 0:
                    await booking.book(
                        order.store,
                        barcode,
                        qty,
                        reason,
                        f"order:{order.id}:restore:{barcode}",
                        note=f"restored by {by}" if by else "",
                        ref=order.id,
                    )
            if not booking.booked:
                raise RestoreError(f"order {order.id} took no stock to restore")
            return list(booking.booked)

    async def catch_up(self) -> int:
        """Book the stored stock.changed events that no entry books (a hook that failed,
        a hub stopped mid-batch); returns how many were booked."""
        source = literal("event:") + events.c.id
        query = (
            select(
                events.c.store_id,
                events.c.id,
                events.c.seq,
                events.c.ts,
                events.c.type,
                events.c.envelope,
            )
            .outerjoin(
                stock_entries,
                and_(
                    stock_entries.c.store_id == events.c.store_id,
                    stock_entries.c.source == source,
                ),
            )
            .where(events.c.type == "stock.changed", stock_entries.c.id.is_(None))
            .order_by(events.c.store_id, events.c.seq)
        )
        async with self.ledger.db.read() as conn:
            rows = (await conn.execute(query)).all()
        by_store: dict[str, list[Envelope]] = {}
        for store, event_id, seq, ts, type_, envelope in rows:
            by_store.setdefault(store, []).append(
                Envelope(event_id, store, seq, ts, type_, envelope)
            )
        before = 0
        for store, missed in by_store.items():
            for start in range(0, len(missed), 500):
                await self.on_events(store, missed[start : start + 500])
            before += len(missed)
        return before


def entries_json(entries: Sequence[LedgerEntry]) -> list[dict[str, Any]]:
    return [e.to_json() for e in entries]
