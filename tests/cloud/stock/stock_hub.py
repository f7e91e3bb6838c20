"""The hub application with its stock service, on SQLite or PostgreSQL, selling on the
four fake platforms (loopback HTTP servers that check each call's signature)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from cloud.api.appkeys import EVENTS
from cloud.api.platforms import ORDERS
from cloud.api.stock import STOCK_SERVICE
from cloud.app import create_app
from cloud.db.engine import Database
from cloud.orders.service import OrderService
from cloud.pickups import PickupProcessor
from cloud.stock.service import StockService
from tests.cloud.orders.order_fixtures import (
    PLATFORM_TOKEN,
    STORE,
    TOKEN,
    fresh_database,
    hub_config,
)
from tests.support.platforms import PLATFORMS, FakePlatform

COLA = "6901234567892"
WATER = "4006381333931"


@dataclass
class StockHub:
    client: TestClient
    db: Database
    stock: StockService
    orders: OrderService
    fakes: dict[str, FakePlatform]

    async def call(
        self, method: str, path: str, body: Any = None, *, data: bytes | None = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        kwargs: dict[str, Any] = {"json": body} if data is None else {"data": data}
        async with self.client.request(method, path, headers=headers, **kwargs) as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text

    async def post_events(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        status, body = await self.call("POST", f"/api/v1/stores/{STORE}/events", {"events": events})
        assert status == 200, body
        return body

    @property
    def url(self) -> str:
        return str(self.client.make_url("")).rstrip("/")


@contextlib.asynccontextmanager
async def stock_hub(tmp_path: Path, db_url: str) -> AsyncIterator[StockHub]:
    async with AsyncExitStack() as stack:
        fakes = {
            name: await stack.enter_async_context(FakePlatform(name, token=PLATFORM_TOKEN))
            for name in PLATFORMS
        }
        cfg = hub_config(tmp_path, {n: f.url for n, f in fakes.items()})
        db = await stack.enter_async_context(fresh_database(db_url, cfg))
        app = create_app(cfg, db)
        stock = app[STOCK_SERVICE]
        stock.push.retry_base_s = 0.05
        stock.push.retry_max_s = 0.2
        orders = app[ORDERS]
        # What cloud/root.py attaches with the MQTT bus: pickups from the events.
        pickups = PickupProcessor(db, orders)
        app[EVENTS].subscribe("pickups", pickups.on_events)
        client = TestClient(TestServer(app))
        await client.start_server()
        stack.push_async_callback(client.close)
        await pickups.start()
        stack.push_async_callback(pickups.stop)
        yield StockHub(client, db, stock, orders, fakes)


def event(n: int, type_: str, data: dict[str, Any], *, prefix: str = "ev") -> dict[str, Any]:
    return {
        "id": f"{prefix}-{n:06d}",
        "store": STORE,
        "seq": n,
        "ts": "2025-01-02T03:04:05Z",
        "type": type_,
        "data": data,
    }
