"""The hub application in this test's process (real app, database, bus and broker), and
a stand-in order service until cloud/orders/service.py exists."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from cloud.api.orders import ORDER_SERVICE
from cloud.app import create_app
from cloud.bus import HubBus
from cloud.config import HubConfig
from cloud.db.engine import Database
from cloud.db.principals import sync_principals
from cloud.orders.model import StoredOrder
from cloud.orders.service import OrderService
from cloud.platforms.base import NormalizedOrder, OrderItem, PlatformPush
from cloud.root import attach_bus

STORE = "demo-001"
TOKEN = "tok-store-one-0123456789abcdef"
OTHER_TOKEN = "tok-store-two-0123456789abcdef"
MERCHANT_TOKEN = "tok-merchant-0123456789abcdef"

SHOP = "shop-1"


async def poll(check: Callable[[], Any], within: float = 5.0, step: float = 0.02) -> Any:
    """Call `check` (sync or async) until it returns something true; return that."""
    async with asyncio.timeout(within):
        while True:
            value = check()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(step)


async def new_order(service: OrderService, n: int, *, shop: str = SHOP) -> StoredOrder:
    """A new Meituan order of the demo store, taken by the real order service."""
    item = OrderItem(
        name="可乐 330ml", qty=2, price=300, sku=f"sku-{n}", barcode="6901234567892", shelf="A3"
    )
    order = NormalizedOrder(
        platform="meituan",
        platform_order_id=str(27000 + n),
        shop_id=shop,
        day_seq=n,
        items=(item,),
        note="少冰",
        total=600,
    )
    stored = await service.ingest(PlatformPush("meituan", "new", order=order), source="test")
    assert stored is not None
    return stored


async def cancel_order(service: OrderService, order: StoredOrder) -> StoredOrder:
    push = PlatformPush(
        "meituan", "cancelled", platform_order_id=order.platform_order_id, shop_id=SHOP
    )
    stored = await service.ingest(push, source="test")
    assert stored is not None and stored.status == "cancelled"
    return stored


def hub_config(tmp_path: Path, mqtt_url: str, *, kid: str = "demo", **extra: Any) -> HubConfig:
    return HubConfig.model_validate(
        {
            "http": {"listen": "127.0.0.1:0"},
            "storage": {"dir": str(tmp_path / "hub")},
            "signing": {"key_file": str(tmp_path / "keys" / "hub-signing.pem"), "kid": kid},
            "mqtt": {"url": mqtt_url, "instance_id": "inproc"},
            "stores": [
                {
                    "id": STORE,
                    "token": TOKEN,
                    "platforms": {"meituan": SHOP},
                    "auto_accept": False,
                },
                {"id": "demo-002", "token": OTHER_TOKEN},
            ],
            "merchants": [{"id": "acme", "token": MERCHANT_TOKEN, "stores": [STORE]}],
        }
        | extra
    )


@dataclass
class InprocHub:
    client: TestClient
    db: Database
    bus: HubBus
    cfg: HubConfig
    orders: OrderService

    @property
    def url(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    async def get(self, path: str, token: str | None = TOKEN) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.client.get(path, headers=headers) as resp:
            text = await resp.text()
            try:
                import json

                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text

    async def post_events(self, events: list[dict[str, Any]]) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with self.client.post(
            f"/api/v1/stores/{STORE}/events", json={"events": events}, headers=headers
        ) as resp:
            return resp.status, await resp.json()


@contextlib.asynccontextmanager
async def inproc_hub(
    tmp_path: Path, mqtt_url: str, *, db_url: str | None = None, kid: str = "demo"
) -> AsyncIterator[InprocHub]:
    cfg = hub_config(tmp_path, mqtt_url, kid=kid)
    db = await Database.open(db_url or str(tmp_path / "hub" / "hub.db"))
    try:
        await sync_principals(db, cfg.stores, cfg.merchants)
        app = create_app(cfg, db)
        own = app.get(ORDER_SERVICE) is None  # create_app makes it once platforms are wired
        service = OrderService(cfg, db, {}) if own else app[ORDER_SERVICE]
        app[ORDER_SERVICE] = service
        bus = HubBus.from_config(cfg)
        bus._reconnect = (0.05, 0.3)
        attach_bus(app, bus)
        client = TestClient(TestServer(app))
        if own:
            await service.start()
        await client.start_server()
        try:
            yield InprocHub(client, db, bus, cfg, service)  # type: ignore[arg-type]
        finally:
            await client.close()
            if own:
                await service.close()
    finally:
        await db.close()
