"""The catalog, ledger, feed and pushes of every store, wired together (one per hub).

stock = StockService(db, ledger, clients, stores, bus=lambda: app.get(BUS))
order_service.on_change(stock.feed.on_order)
app[EVENT_HOOKS].append(stock.feed.on_events)
await stock.start()
await stock.upsert_products("demo-001", [product])   # stored, told to the store
await stock.stop()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cloud.bus import HubBus
from cloud.db.engine import Database
from cloud.orders.stores import StoreDirectory
from cloud.platforms.base import PlatformClient
from cloud.stock.catalog import Catalog, SkuListing, SkuMapping
from cloud.stock.feed import StockFeed
from cloud.stock.ledger import StockLedger
from cloud.stock.product import Product
from cloud.stock.push import StockPush
from cloud.stock.to_store import CatalogSender

log = logging.getLogger("cloud.stock")


class StockService:
    def __init__(
        self,
        db: Database,
        ledger: StockLedger,
        clients: Mapping[str, PlatformClient],
        stores: StoreDirectory,
        *,
        bus: Callable[[], HubBus | None] = lambda: None,
        **push_options: Any,
    ) -> None:
        self.db = db
        self.ledger = ledger
        self.catalog = Catalog(db)
        self.feed = StockFeed(ledger, self.catalog)
        self.push = StockPush(db, ledger, self.catalog, clients, stores, **push_options)
        self.to_store = CatalogSender(bus)
        ledger.on_change(self.push.on_change)
        self._catch_up: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.push.start()
        self._catch_up = asyncio.get_running_loop().create_task(self._book_missed())

    async def stop(self) -> None:
        if self._catch_up is not None:
            self._catch_up.cancel()
            await asyncio.gather(self._catch_up, return_exceptions=True)
        await self.push.stop()
        await self.to_store.stop()

    async def _book_missed(self) -> None:
        try:
            booked = await self.feed.catch_up()
        except Exception as e:
            log.error("could not book missed stock events: %s", e)
            return
        if booked:
            log.warning("booked %d stock.changed events missed before", booked)

    async def upsert_products(self, store: str, products: Sequence[Product]) -> list[Product]:
        """Store these products; the changed ones go to the store's agent, and platform
        SKUs now matched to them get their stock."""
        changed = await self.catalog.upsert(store, products)
        self.to_store.send(store, changed)
        self.push.mark(store, [p.barcode for p in changed])
        return changed

    async def map_skus(self, store: str, listings: Sequence[SkuListing]) -> list[SkuMapping]:
        mappings = await self.catalog.map_skus(store, listings)
        self.push.mark(store, {m.barcode for m in mappings if m.barcode})
        return mappings
