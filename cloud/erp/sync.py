"""What the hub tells its ERPs and hears from them: the mapping from hub happenings to
ERP documents, queued in the outbox (cloud/erp/outbox.py).

    sync = ErpSync(cfg, db, outbox, ledger)
    order_service.on_change(sync.on_order_change)   # picked up -> sales order + fees
    app[EVENT_HOOKS].append(sync.on_events)          # sale.completed -> sales order
    ledger.on_change(sync.on_stock_change)           # hub is right -> stock upload
    await sync.poll_stock()                          # ERP is right -> ledger set_quantity

A platform order picked up becomes a sales order, its commission and delivery fee two
"other expense" entries; its refund a refund order and the same entries reversed. A
store sale (`sale.completed` from checkout, vending or a locker) becomes a sales order,
unless it fulfils a platform order (pushed when that order is picked up). Each document
is keyed by what caused it, so hearing a change twice queues it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import select

from cloud.config import HubConfig, StoreEntry
from cloud.db.engine import Database
from cloud.db.tables import orders
from cloud.db.times import now_text
from cloud.envelope import Envelope
from cloud.erp.base import (
    ErpClient,
    ErpError,
    ErpLine,
    ExpenseEntry,
    Product,
    RefundOrder,
    SalesOrder,
    StockScope,
    fen,
)
from cloud.erp.outbox import ErpOutbox
from cloud.orders.model import StoredOrder
from cloud.stock.ledger import LedgerEntry, StockLedger
from cloud.stock.tables import catalog

log = logging.getLogger("cloud.erp.sync")

SALE_CHANNELS = frozenset({"checkout", "vend", "locker"})


class ErpSync:
    def __init__(
        self,
        cfg: HubConfig,
        db: Database,
        outbox: ErpOutbox,
        ledger: StockLedger,
        clients: Mapping[str, ErpClient] | None = None,
    ) -> None:
        self.cfg = cfg
        self.db = db
        self.outbox = outbox
        self.ledger = ledger
        self.clients = clients if clients is not None else outbox.clients
        self.sync = cfg.erp.sync
        self._stores = {s.id: s for s in cfg.stores}
        self._poller: asyncio.Task[None] | None = None

    def erp_of(self, store: str) -> str | None:
        """The store's ERP, if it has one configured and the sync is on."""
        entry = self._stores.get(store)
        if entry is None or not self.sync.enabled or entry.erp.system is None:
            return None
        return entry.erp.system if entry.erp.system in self.clients else None

    def _shop(self, store: StoreEntry) -> str:
        return store.erp.shop_no or store.id

    # -- platform orders ----------------------------------------------------------------

    async def on_order_change(self, order: StoredOrder, kind: str) -> None:
        """The OrderService listener."""
        erp = self.erp_of(order.store)
        if erp is None:
            return
        store = self._stores[order.store]
        if kind == "picked_up":
            await self._order_sold(erp, store, order)
        elif kind == "refunded":
            await self._order_refunded(erp, store, order)

    async def _order_sold(self, erp: str, store: StoreEntry, order: StoredOrder) -> None:
        at = order.picked_up_at or order.updated_at or now_text()
        if self.sync.push_sales:
            sale = SalesOrder(
                order_id=order.id,
                shop=self._shop(store),
                channel=order.platform,
                at=at,
                lines=tuple(
                    ErpLine(i.barcode or i.sku, i.name, i.qty, i.price) for i in order.items
                ),
                total=order.total,
                buyer=f"{order.platform}-{order.view_id or order.platform_order_id}",
                note=order.note,
                address=store.erp.address,
                mobile=store.erp.mobile,
            )
            await self.outbox.enqueue(
                erp=erp,
                store=store.id,
                kind="sales_order",
                key=f"{erp}:trade:{order.id}",
                ref=order.id,
                payload=sale.to_json(),
            )
        entries = self._fees(store, order, at, reverse=False)
        if self.sync.push_fees and entries:
            await self.outbox.enqueue(
                erp=erp,
                store=store.id,
                kind="expenses",
                key=f"{erp}:expense:{order.id}",
                ref=order.id,
                payload={"entries": [e.to_json() for e in entries]},
                after=f"{erp}:trade:{order.id}" if self.sync.push_sales else None,
            )

    async def _order_refunded(self, erp: str, store: StoreEntry, order: StoredOrder) -> None:
        at = order.refunded_at or order.updated_at or now_text()
        if self.sync.push_refunds:
            refund = RefundOrder(
                refund_id=f"{order.id}:refund",
                order_id=order.id,
                shop=self._shop(store),
                at=at,
                lines=tuple(
                    ErpLine(i.barcode or i.sku, i.name, i.qty, i.price) for i in order.items
                ),
                amount=order.total,
                reason=f"{order.platform} refund",
                buyer=f"{order.platform}-{order.view_id or order.platform_order_id}",
            )
            await self.outbox.enqueue(
                erp=erp,
                store=store.id,
                kind="refund_order",
                key=f"{erp}:refund:{order.id}",
                ref=order.id,
                payload=refund.to_json(),
                after=f"{erp}:trade:{order.id}",
            )
        entries = self._fees(store, order, at, reverse=True)
        if self.sync.push_fees and entries:
            await self.outbox.enqueue(
                erp=erp,
                store=store.id,
                kind="expenses",
                key=f"{erp}:expense-reversal:{order.id}",
                ref=order.id,
                payload={"entries": [e.to_json() for e in entries]},
                after=f"{erp}:expense:{order.id}",
            )

    def _fees(
        self, store: StoreEntry, order: StoredOrder, at: str, *, reverse: bool
    ) -> list[ExpenseEntry]:
        sign, suffix = (-1, ":reversal") if reverse else (1, "")
        fees = (("commission", order.commission), ("delivery_fee", order.fees))
        return [
            ExpenseEntry(
                entry_id=f"{order.id}:{kind}{suffix}",
                order_id=order.id,
                shop=self._shop(store),
                kind=kind,
                amount=sign * amount,
                at=at,
                note=f"{order.platform} {'refund ' if reverse else ''}{kind}",
            )
            for kind, amount in fees
            if amount > 0
        ]

    # -- store sales ---------------------------------------------------------------------

    async def on_events(self, store: str, events: list[Envelope]) -> None:
        """The event-ingest hook: each new `sale.completed` becomes a sales order."""
        erp = self.erp_of(store)
        if erp is None or not self.sync.push_sales:
            return
        for event in events:
            if event.type != "sale.completed":
                continue
            try:
                await self._sale(erp, self._stores[store], event)
            except (KeyError, TypeError, ValueError, ArithmeticError) as e:
                log.warning(
                    "sale.completed %s not sent to the ERP: %s: %s",
                    event.id,
                    type(e).__name__,
                    e,
                    extra={"store": store},
                )

    async def _sale(self, erp: str, store: StoreEntry, event: Envelope) -> None:
        data: dict[str, Any] = json.loads(event.json)["data"]
        order_id = data.get("order")
        if order_id and await self._is_platform_order(str(order_id)):
            return  # its pickup pushes it, with the platform's fees
        channel = str(data.get("channel") or "checkout")
        sale_id = str(data["sale"])
        lines = tuple(
            ErpLine(
                str(i["barcode"]),
                str(i.get("name") or i["barcode"]),
                int(i["qty"]),
                fen(i["price"]),
            )
            for i in data["items"]
        )
        if not lines:
            return
        total = fen(data["total"]) if data.get("total") is not None else None
        sale = SalesOrder(
            order_id=f"{store.id}-{channel}-{sale_id}",
            shop=self._shop(store),
            channel=channel if channel in SALE_CHANNELS else "checkout",
            at=event.ts,
            lines=lines,
            total=total if total is not None else sum(line.price * line.qty for line in lines),
            buyer=f"{store.id}-{channel}",
            address=store.erp.address,
            mobile=store.erp.mobile,
        )
        await self.outbox.enqueue(
            erp=erp,
            store=store.id,
            kind="sales_order",
            key=f"{erp}:trade:{sale.order_id}",
            ref=sale.order_id,
            payload=sale.to_json(),
        )

    async def _is_platform_order(self, order_id: str) -> bool:
        async with self.db.read() as conn:
            found = await conn.execute(select(orders.c.id).where(orders.c.id == order_id))
            return found.first() is not None

    # -- products ------------------------------------------------------------------------

    async def push_products(
        self, store: str, products: Sequence[Product] | None = None
    ) -> tuple[bool, int]:
        """Queue the store's products (the catalog, unless given) as one push; (queued,
        how many). The same list pushed again is queued once."""
        erp = self.erp_of(store)
        if erp is None:
            raise ErpError(f"store {store!r} has no ERP (hub.yaml stores[].erp.system)")
        if products is None:
            products = await self.catalog(store)
        if not products:
            return False, 0
        listed = sorted((p.to_json() for p in products), key=lambda p: p["barcode"])
        digest = hashlib.sha256(json.dumps(listed, sort_keys=True).encode()).hexdigest()[:16]
        queued = await self.outbox.enqueue(
            erp=erp,
            store=store,
            kind="products",
            key=f"{erp}:products:{store}:{digest}",
            ref=f"{len(listed)} products",
            payload={"shop": self._shop(self._stores[store]), "products": listed},
        )
        return queued, len(listed)

    async def catalog(self, store: str) -> list[Product]:
        query = (
            select(catalog.c.barcode, catalog.c.name, catalog.c.price, catalog.c.cost)
            .where(catalog.c.store_id == store)
            .order_by(catalog.c.barcode)
        )
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [Product(b, n, int(p), None if c is None else int(c)) for b, n, p, c in rows]

    # -- stock ---------------------------------------------------------------------------

    def _stock_source(self, store: str) -> str:
        return self._stores[store].erp.stock_source

    async def on_stock_change(
        self, store: str, barcode: str, qty_after: int, entry: LedgerEntry
    ) -> None:
        """The ledger listener: the hub being right, the ERP is told the new count."""
        erp = self.erp_of(store)
        if erp is None or self._stock_source(store) != "hub" or entry.reason == "erp":
            return
        entry_store = self._stores[store]
        await self.outbox.enqueue(
            erp=erp,
            store=store,
            kind="stock_upload",
            key=f"{erp}:stock:{store}:{barcode}:{entry.id}",
            ref=barcode,
            payload={
                "shop": self._shop(entry_store),
                "warehouse": entry_store.erp.warehouse_no,
                "barcode": barcode,
            },
            grp=f"{erp}:stock:{store}:{barcode}",
        )

    async def stock_reader(self, store: str, barcodes: Collection[str]) -> dict[str, int]:
        levels = await self.ledger.levels(store, barcodes)
        return {b: qty for b, (qty, _version) in levels.items()}

    async def poll_stock(self) -> int:
        """Set the ledger to the ERP's count for every store whose ERP is right about
        stock; returns how many items changed."""
        changed = 0
        for store in self._stores.values():
            erp = self.erp_of(store.id)
            if erp is None or store.erp.stock_source != "erp":
                continue
            try:
                changed += await self._poll_store(erp, store)
            except ErpError as e:
                log.warning("ERP stock of %s not read: %s", store.id, e)
        return changed

    async def _poll_store(self, erp: str, store: StoreEntry) -> int:
        barcodes = set(await self.ledger.quantities(store.id))
        barcodes |= {p.barcode for p in await self.catalog(store.id)}
        if not barcodes:
            return 0
        scope = StockScope(self._shop(store), store.erp.warehouse_no, tuple(sorted(barcodes)))
        levels = await self.clients[erp].query_stock(scope)
        polled_at = now_text()
        changed = 0
        for level in levels:
            version = level.version or polled_at
            entry = await self.ledger.set_quantity(
                store.id,
                level.barcode,
                level.qty,
                "erp",
                f"erp:{erp}:{level.barcode}:{version}"[:200],
            )
            if entry is not None and entry.delta != 0:
                changed += 1
        return changed

    async def start_polling(self) -> None:
        if self._poller is None and any(
            s.erp.stock_source == "erp" and self.erp_of(s.id) for s in self._stores.values()
        ):
            self._poller = asyncio.get_running_loop().create_task(self._poll_loop())

    async def stop_polling(self) -> None:
        task, self._poller = self._poller, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _poll_loop(self) -> None:
        while True:
            try:
                await self.poll_stock()
            except Exception:
                log.exception("ERP stock poll failed")
            await asyncio.sleep(self.sync.stock_poll_seconds)
