"""The ERP tests' world: a hub config with stores on 旺店通 and 聚水潭, fake ERPs on
loopback, the real order service, stock ledger, outbox and sync on SQLite or PostgreSQL,
and a clock the tests move by hand (a day of outage takes no time)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud.config import HubConfig
from cloud.db.engine import Database
from cloud.db.times import now_text
from cloud.envelope import Envelope
from cloud.erp.base import ErpClient
from cloud.erp.jst import JstClient
from cloud.erp.outbox import ErpOutbox
from cloud.erp.sync import ErpSync
from cloud.erp.wdt import WdtClient
from cloud.orders.service import OrderService
from cloud.platforms.base import NormalizedOrder, OrderItem, PlatformPush
from cloud.stock.ledger import StockLedger
from cloud.stock.tables import catalog
from tests.cloud.orders.order_fixtures import fresh_database
from tests.support.erp import APP_KEY, SECRET, TOKEN, FakeJst, FakeWdt

WDT_STORE = "demo-001"  # 旺店通, the hub is right about stock
JST_STORE = "demo-002"  # 聚水潭
ERP_STOCK_STORE = "demo-003"  # 旺店通, the ERP is right about stock
STORE_TOKEN = "tok-store-one-0123456789abcdef"
MILK, BREAD = "6900000000011", "6900000000028"


class FakeClock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def erp_config(tmp_path: Path, wdt_url: str, jst_url: str) -> HubConfig:
    def store(sid: str, token: str, erp: dict[str, Any]) -> dict[str, Any]:
        return {"id": sid, "token": token, "platforms": {"meituan": sid}, "erp": erp}

    return HubConfig.model_validate(
        {
            "http": {"listen": "127.0.0.1:0"},
            "storage": {"dir": str(tmp_path / "hub")},
            "signing": {"key_file": str(tmp_path / "keys" / "hub-signing.pem"), "kid": "demo"},
            "mqtt": {"url": "mqtt://127.0.0.1:1883"},
            "stores": [
                store(
                    WDT_STORE,
                    STORE_TOKEN,
                    {"system": "wdt", "shop_no": "wdt-shop-1", "warehouse_no": "wh-1",
                     "address": "北京 北京市 海淀区 花园路1号", "mobile": "13800000000"},
                ),
                store(JST_STORE, "tok-store-two-0123456789abcdef",
                      {"system": "jst", "shop_no": "10001", "warehouse_no": "20001"}),
                store(ERP_STOCK_STORE, "tok-store-three-0123456789abcd",
                      {"system": "wdt", "shop_no": "wdt-shop-3", "stock_source": "erp"}),
            ],
            "erp": {
                "wdt": {"app_id": APP_KEY, "secret": SECRET, "url": wdt_url},
                "jst": {"app_id": APP_KEY, "secret": SECRET, "url": jst_url, "token": TOKEN},
                "sync": {"retry_base_seconds": 10, "retry_max_seconds": 900},
            },
        }
    )  # fmt: skip


@dataclass
class Env:
    cfg: HubConfig
    db: Database
    wdt: FakeWdt
    jst: FakeJst
    clock: FakeClock
    clients: dict[str, ErpClient]
    outbox: ErpOutbox
    sync: ErpSync
    ledger: StockLedger
    orders: OrderService

    async def drain(self, *, rounds: int = 10, step_s: float = 5.0) -> None:
        """Send what is due, moving the clock on, until nothing is pending."""
        for _ in range(rounds):
            await self.outbox.run_due()
            if not (await self.outbox.counts()).get("pending"):
                return
            self.clock.advance(step_s)

    async def picked_up(self, order_id: str, store: str = WDT_STORE, **kw: Any) -> None:
        order = meituan_order(order_id, store, **kw)
        push = PlatformPush("meituan", "new", order_id, store, order, "2")
        stored = await self.orders.ingest(push, source="meituan:push")
        assert stored is not None
        await self.orders.mark_picked_up(store, stored.id, courier="c-7", source="test")

    async def refunded(self, order_id: str, store: str = WDT_STORE) -> None:
        push = PlatformPush("meituan", "refunded", order_id, store, None, "9", "顾客退款")  # type: ignore[arg-type]
        await self.orders.ingest(push, source="meituan:push")

    async def sale_event(self, store: str, sale: str, **data: Any) -> None:
        body = {
            "sale": sale,
            "channel": "checkout",
            "items": [{"barcode": MILK, "name": "牛奶 Milk", "qty": 1, "price": 6.5}],
            "total": 6.5,
            "payment": {"id": f"pay-{sale}", "method": "wechat"},
            "order": None,
            **data,
        }
        ts = now_text()
        event = {"id": f"ev-{sale}", "store": store, "seq": 1, "ts": ts,
                 "type": "sale.completed", "data": body}  # fmt: skip
        envelope = Envelope(event["id"], store, 1, ts, "sale.completed", json.dumps(event))
        await self.sync.on_events(store, [envelope])

    async def add_catalog(self, store: str, *items: tuple[str, str, int]) -> None:
        async with self.db.write() as conn:
            for barcode, name, price in items:
                await conn.execute(
                    catalog.insert().values(
                        store_id=store, barcode=barcode, name=name, price=price, cost=price // 2,
                        shelf="A1", low_stock=None, updated_at=now_text(),
                    )
                )  # fmt: skip


def meituan_order(order_id: str, store: str, **kw: Any) -> NormalizedOrder:
    fields: dict[str, Any] = {
        "platform": "meituan",
        "platform_order_id": order_id,
        "shop_id": store,
        "day_seq": 3,
        "items": (
            OrderItem("牛奶 Milk", 2, 650, sku="milk-1l", barcode=MILK),
            OrderItem("面包 Bread", 1, 900, sku="bread", barcode=BREAD),
        ),
        "note": "请敲门",
        "total": 2200,
        "fees": 300,
        "commission": 180,
        "platform_status": "2",
    }
    fields.update(kw)
    return NormalizedOrder(**fields)


def make_clients(cfg: HubConfig) -> dict[str, ErpClient]:
    assert cfg.erp.wdt is not None and cfg.erp.jst is not None
    return {"wdt": WdtClient(cfg.erp.wdt), "jst": JstClient(cfg.erp.jst)}


def make_outbox(db: Database, clients: dict[str, ErpClient], clock: FakeClock) -> ErpOutbox:
    return ErpOutbox(db, clients, clock=clock, retry_base_s=10, retry_max_s=900, max_refusals=5)


@contextlib.asynccontextmanager
async def erp_env(tmp_path: Path, db_url: str) -> AsyncIterator[Env]:
    async with FakeWdt() as wdt, FakeJst() as jst:
        cfg = erp_config(tmp_path, wdt.api_url, jst.url)
        async with fresh_database(db_url, cfg) as db:
            clock = FakeClock()
            clients = make_clients(cfg)
            ledger = StockLedger(db)
            outbox = make_outbox(db, clients, clock)
            sync = ErpSync(cfg, db, outbox, ledger, clients)
            outbox.stock_reader = sync.stock_reader
            ledger.on_change(sync.on_stock_change)
            orders = OrderService(cfg, db, {})
            orders.on_change(sync.on_order_change)
            try:
                yield Env(cfg, db, wdt, jst, clock, clients, outbox, sync, ledger, orders)
            finally:
                await orders.close()
                for client in clients.values():
                    await client.close()
