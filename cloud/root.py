"""The hub's composition root: every service is built here once, with its collaborators
passed in, wired to the others here, and started and stopped in order here. HTTP
handlers (cloud/api, cloud/web) only receive the services they use, through the app keys
`install` sets; no service is built in a route module, and no feature reaches into
another's tables.

    services = HubServices(cfg, db)     # create_app does this
    attach_bus(app, bus)                # the broker: delivery of orders, pickups back
    attach_alerts(app)                  # owner notifications

Wiring, in one place:
- new events from the stores (EventDispatcher): stock feed, ERP sync, pickups, alerts;
- order changes: delivery to the store first, then the stock feed, then the ERP;
- stock ledger changes: the ERP, the alerts.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from cloud.alerts import entry_attack
from cloud.alerts.worker import ALERTS, AlertCenter
from cloud.api.appkeys import CONFIG, DB, EVENTS, STOCK_LEDGER
from cloud.bus import BUS, HubBus
from cloud.config import HubConfig
from cloud.db import presence
from cloud.db.engine import Database
from cloud.delivery import OrderDelivery
from cloud.erp.base import ErpClient
from cloud.erp.jst import JstClient
from cloud.erp.outbox import ErpOutbox
from cloud.erp.sync import ErpSync
from cloud.erp.wdt import WdtClient
from cloud.event_dispatch import EventDispatcher
from cloud.limits.web import DOOR_PAUSED
from cloud.orders.service import OrderService
from cloud.pickups import PickupProcessor
from cloud.platforms.base import PlatformAdapter, PlatformClient
from cloud.platforms.registry import configured_adapters
from cloud.stock.ledger import StockLedger
from cloud.stock.service import StockService

log = logging.getLogger("cloud.root")


def erp_clients(cfg: HubConfig) -> dict[str, ErpClient]:
    clients: dict[str, ErpClient] = {}
    if cfg.erp.wdt is not None:
        clients["wdt"] = WdtClient(cfg.erp.wdt)
    if cfg.erp.jst is not None:
        clients["jst"] = JstClient(cfg.erp.jst)
    return clients


class HubServices:
    def __init__(self, cfg: HubConfig, db: Database) -> None:
        self.cfg = cfg
        self.db = db
        self.bus: HubBus | None = None
        self.events = EventDispatcher()
        self.ledger = StockLedger(db)
        self.adapters: dict[str, PlatformAdapter] = configured_adapters(cfg.platforms)
        self.platform_clients: dict[str, PlatformClient] = {
            name: adapter.client() for name, adapter in self.adapters.items()
        }
        self.orders = OrderService(cfg, db, self.platform_clients)
        self.stock = StockService(
            db, self.ledger, self.platform_clients, self.orders.stores, bus=lambda: self.bus
        )
        self.erp_clients = erp_clients(cfg)
        sync_cfg = cfg.erp.sync
        self.erp_outbox = ErpOutbox(
            db,
            self.erp_clients,
            retry_base_s=sync_cfg.retry_base_seconds,
            retry_max_s=sync_cfg.retry_max_seconds,
            max_refusals=sync_cfg.max_refusals,
        )
        self.erp = ErpSync(cfg, db, self.erp_outbox, self.ledger, self.erp_clients)
        self.erp_outbox.stock_reader = self.erp.stock_reader
        self.delivery: OrderDelivery | None = None
        self.pickups: PickupProcessor | None = None

        self.events.subscribe("stock", self.stock.feed.on_events)
        self.events.subscribe("erp", self.erp.on_events)
        self.orders.on_change(self.stock.feed.on_order)
        self.orders.on_change(self.erp.on_order_change)
        self.ledger.on_change(self.erp.on_stock_change)

    def install(self, app: web.Application) -> None:
        """The app keys handlers read, and the services' lifetime as the app's."""
        from cloud.api.erp import ERP_SYNC
        from cloud.api.orders import ORDER_SERVICE
        from cloud.api.platforms import ADAPTERS, ORDERS
        from cloud.api.stock import STOCK_SERVICE

        app[SERVICES] = self
        app[CONFIG] = self.cfg
        app[DB] = self.db
        app[EVENTS] = self.events
        app[STOCK_LEDGER] = self.ledger
        app[ADAPTERS] = self.adapters
        app[ORDERS] = self.orders
        app[ORDER_SERVICE] = self.orders
        app[STOCK_SERVICE] = self.stock
        app[ERP_SYNC] = self.erp
        app.cleanup_ctx.append(self._running)

    async def _running(self, _app: web.Application) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def start(self) -> None:
        await self.orders.start()
        await self.stock.start()
        await self.erp_outbox.start()
        await self.erp.start_polling()

    async def stop(self) -> None:
        await self.erp.stop_polling()
        await self.erp_outbox.stop()
        for erp in self.erp_clients.values():
            await erp.close()
        await self.stock.stop()
        await self.orders.close()
        for client in self.platform_clients.values():
            await client.close()

    # --- the broker: orders to the stores, pickups back --------------------------------

    async def start_bus(self) -> None:
        bus = self.bus
        assert bus is not None
        db = self.db

        async def log_status(store: str, status: dict[str, Any]) -> None:
            if len(store) <= 64:
                await presence.log_status(db, store, status, hub=bus.instance_id)

        bus.on_status(log_status)
        await bus.start()
        self.delivery = OrderDelivery(bus, db)
        # First: the order reaches the store before the stock feed learns its SKUs.
        self.orders.on_change(self.delivery.on_change, first=True)
        self.pickups = PickupProcessor(db, self.orders)
        self.events.subscribe("pickups", self.pickups.on_events)
        await self.pickups.start()

    async def stop_bus(self) -> None:
        for part in (self.delivery, self.pickups):
            if part is not None:
                await part.stop()
        if self.bus is not None:
            await self.bus.stop()


SERVICES = web.AppKey("hub_services", HubServices)


def attach_bus(app: web.Application, bus: HubBus) -> None:
    """Run the bus, the status log, order delivery and pickups with the application:
    started after every other startup hook, stopped at its cleanup. Call after
    create_app, before the runner's setup."""
    services = app[SERVICES]
    services.bus = bus
    app[BUS] = bus

    async def start(_app: web.Application) -> None:
        await services.start_bus()

    async def stop(_app: web.Application) -> None:
        await services.stop_bus()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)


def attach_alerts(app: web.Application, **options: Any) -> AlertCenter:
    """Run owner notifications with the application (started and stopped with it).
    `options` go to AlertCenter (tests pass a clock or robots)."""
    services = app[SERVICES]

    def online(store: str) -> bool | None:
        return services.bus.store_online(store) if services.bus is not None else None

    options.setdefault("presence", online)
    center = AlertCenter(services.cfg, services.db, **options)
    app[ALERTS] = center
    services.events.subscribe("alerts", center.on_events)
    door_paused = app.get(DOOR_PAUSED)
    if door_paused is not None:  # the entry page pauses a door: entry_attack
        door_paused.append(functools.partial(entry_attack.door_paused, center.triggers))
    services.ledger.on_change(center.on_stock_change)

    async def start(_app: web.Application) -> None:
        await center.start()

    async def stop(_app: web.Application) -> None:
        await center.stop()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return center
