"""The owner dashboard through aiohttp's test client, on SQLite and on PostgreSQL: the
real application, database and order service; orders are taken as platform pushes are,
sales arrive as an agent posts them. What the owner reads on the page is checked, and who
may read it: a merchant sees its own stores only, and a session dies with its token.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update

from cloud.api.platforms import ORDERS
from cloud.app import create_app
from cloud.config import HubConfig
from cloud.db.engine import Database
from cloud.db.principals import sync_principals
from cloud.db.tables import orders as orders_table
from cloud.db.times import utc_text
from cloud.orders.service import OrderService
from cloud.platforms.base import NormalizedOrder, OrderItem, PlatformPush
from cloud.signing import write_keypair
from cloud.web import dashboard_data as data
from tests.support.hub import make_event

STORE, OTHER_STORE = "demo-001", "demo-002"
STORE_TOKEN = "tok-store-one-0123456789abcdef"
MERCHANT_TOKEN = "tok-merchant-acme-0123456789ab"
OTHER_MERCHANT_TOKEN = "tok-merchant-other-0123456789"
CHAIN_TOKEN = "tok-merchant-chain-0123456789"
COLA, CHIPS = "6901234567892", "6920000000017"


def hub_config(tmp_path: Path, merchant_token: str = MERCHANT_TOKEN) -> HubConfig:
    return HubConfig.model_validate(
        {
            "http": {"listen": "127.0.0.1:0"},
            "storage": {"dir": str(tmp_path / "hub")},
            "signing": {"key_file": str(tmp_path / "keys" / "hub-signing.pem"), "kid": "demo"},
            "mqtt": {"url": "mqtt://127.0.0.1:9"},
            "stores": [
                {
                    "id": STORE,
                    "name": "演示店",
                    "token": STORE_TOKEN,
                    "platforms": {"meituan": "mt-1", "eleme": "el-1"},
                },
                {"id": OTHER_STORE, "name": "别家店", "token": "tok-store-two-0123456789abcdef"},
            ],
            "merchants": [
                {"id": "acme", "token": merchant_token, "stores": [STORE]},
                {"id": "other", "token": OTHER_MERCHANT_TOKEN, "stores": [OTHER_STORE]},
                {"id": "chain", "token": CHAIN_TOKEN, "stores": [STORE, OTHER_STORE]},
            ],
        }
    )


@dataclass
class Hub:
    client: TestClient
    db: Database
    orders: OrderService
    tmp_path: Path

    async def owner(self, token: str = MERCHANT_TOKEN) -> TestClient:
        """This client, logged in with `token` (its cookie jar keeps the session)."""
        status, _ = await login(self.client, token)
        assert status == 303
        return self.client


@pytest.fixture
async def hub(tmp_path: Path, db_url: str) -> AsyncIterator[Hub]:
    write_keypair(tmp_path / "keys", "demo")
    cfg = hub_config(tmp_path)
    db = await Database.open(db_url)
    try:
        if db.dialect == "postgresql":  # the module's database, emptied for each test
            await _empty(db)
        await sync_principals(db, cfg.stores, cfg.merchants)
        app = create_app(cfg, db)
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            yield Hub(client, db, app[ORDERS], tmp_path)
        finally:
            await client.close()
    finally:
        await db.close()


async def _empty(db: Database) -> None:
    from cloud.db.tables import metadata

    async with db.write() as conn:
        for table in reversed(metadata.sorted_tables):
            if table.name != "schema_version":
                await conn.execute(table.delete())


async def login(client: TestClient, token: str) -> tuple[int, str]:
    async with client.get("/dashboard/login") as resp:
        page = await resp.text()
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf, page
    async with client.post(
        "/dashboard/login",
        data={"token": token, "csrf": csrf[1]},
        allow_redirects=False,
    ) as resp:
        client.last_set_cookies = resp.headers.getall("Set-Cookie", [])  # type: ignore[attr-defined]
        return resp.status, await resp.text()


async def page(client: TestClient, path: str) -> tuple[int, str]:
    async with client.get(path, allow_redirects=False) as resp:
        return resp.status, await resp.text()


async def take_order(
    service: OrderService, platform: str, n: int, items: list[OrderItem], total: int
) -> str:
    shop = {"meituan": "mt-1", "eleme": "el-1"}[platform]
    order = NormalizedOrder(
        platform=platform,
        platform_order_id=str(90000 + n),
        shop_id=shop,
        day_seq=n,
        items=tuple(items),
        total=total,
        commission=total // 10,
    )
    stored = await service.ingest(PlatformPush(platform, "new", order=order), source="test")
    assert stored is not None
    return stored.id


def cola(qty: int) -> OrderItem:
    return OrderItem(name="可口可乐 330ml", qty=qty, price=350, sku="sku-cola", barcode=COLA)


def chips(qty: int) -> OrderItem:
    return OrderItem(name="薯片", qty=qty, price=1250, sku="sku-chips", barcode=CHIPS)


def sale_event(seq: int, total: float, items: list[dict[str, Any]], **extra: Any) -> dict:
    event = make_event(
        seq,
        type_="sale.completed",
        sale=f"s-{seq}",
        channel="checkout",
        items=items,
        total=total,
        payment=None,
        order=None,
        **extra,
    )
    event["ts"] = utc_text(dt.datetime.now(dt.UTC))
    return event


async def post_events(hub: Hub, events: list[dict]) -> None:
    async with hub.client.post(
        f"/api/v1/stores/{STORE}/events",
        json={"events": events},
        headers={"Authorization": f"Bearer {STORE_TOKEN}"},
    ) as resp:
        assert resp.status == 200, await resp.text()


def text_of(html: str, element_id: str) -> str:
    m = re.search(rf'id="{element_id}"[^>]*>(.*?)<', html, re.S)
    assert m, f"no #{element_id}"
    return m[1].strip()


# -- who may see what --------------------------------------------------------------------


async def test_without_a_session_the_dashboard_sends_you_to_log_in(hub: Hub) -> None:
    for path in ("/dashboard", f"/dashboard/stores/{STORE}"):
        status, _ = await page(hub.client, path)
        assert status == 303
    async with hub.client.get(f"/dashboard/stores/{STORE}", allow_redirects=False) as resp:
        assert resp.headers["Location"] == "/dashboard/login"


async def test_a_merchant_token_logs_in_and_lands_on_its_store(hub: Hub) -> None:
    client = hub.client
    status, _ = await login(client, MERCHANT_TOKEN)
    assert status == 303
    (cookie,) = [c for c in client.last_set_cookies if c.startswith("sg_dash=")]  # type: ignore[attr-defined]
    attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
    assert {"httponly", "samesite", "path"} <= attributes and "SameSite=Strict" in cookie
    assert MERCHANT_TOKEN not in cookie
    async with client.get("/dashboard", allow_redirects=False) as resp:
        assert resp.status == 303
        assert resp.headers["Location"] == f"/dashboard/stores/{STORE}"
    async with client.get(f"/dashboard/stores/{STORE}") as resp:
        assert resp.status == 200
        html = await resp.text()
        csp = resp.headers["Content-Security-Policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp
    assert text_of(html, "store-name") == "演示店"
    assert "<script" not in html


async def test_another_merchants_store_is_forbidden(hub: Hub) -> None:
    client = await hub.owner(OTHER_MERCHANT_TOKEN)
    status, html = await page(client, f"/dashboard/stores/{STORE}")
    assert status == 403
    assert "无权查看" in html and "演示店" not in html
    # A store that does not exist reads the same: nothing is given away.
    status, _ = await page(client, "/dashboard/stores/no-such-store")
    assert status == 403
    status, html = await page(client, f"/dashboard/stores/{OTHER_STORE}")
    assert status == 200 and "别家店" in html


async def test_a_merchant_with_several_stores_picks_one_from_a_list(hub: Hub) -> None:
    await take_order(hub.orders, "meituan", 20, [cola(1)], 350)
    client = await hub.owner(CHAIN_TOKEN)
    status, html = await page(client, "/dashboard")
    assert status == 200
    links = re.findall(r'<a class="store-link" href="([^"]+)">\s*<span class="name">([^<]+)<', html)
    assert links == [
        (f"/dashboard/stores/{STORE}", "演示店"),
        (f"/dashboard/stores/{OTHER_STORE}", "别家店"),
    ]
    assert "今日订单 1 · 待取货 1" in html and "今日订单 0 · 待取货 0" in html
    status, html = await page(client, f"/dashboard/stores/{OTHER_STORE}")
    assert status == 200 and 'href="/dashboard">全部门店' in html


@pytest.mark.parametrize(
    ("token", "says"),
    [
        ("tok-not-a-real-token-0123456789", "令牌不正确"),
        (STORE_TOKEN, "这是门店令牌"),
    ],
)
async def test_a_wrong_or_store_token_does_not_log_in(hub: Hub, token: str, says: str) -> None:
    status, html = await login(hub.client, token)
    assert status == 401 and says in html
    assert token not in html
    status, _ = await page(hub.client, f"/dashboard/stores/{STORE}")
    assert status == 303


async def test_a_login_post_without_the_forms_token_is_refused(hub: Hub) -> None:
    async with hub.client.post(
        "/dashboard/login", data={"token": MERCHANT_TOKEN}, allow_redirects=False
    ) as resp:
        assert resp.status == 400
        assert "页面已失效" in await resp.text()
    status, _ = await page(hub.client, f"/dashboard/stores/{STORE}")
    assert status == 303


async def test_a_session_ends_when_the_merchants_token_changes(hub: Hub) -> None:
    client = await hub.owner()
    assert (await page(client, f"/dashboard/stores/{STORE}"))[0] == 200
    changed = hub_config(hub.tmp_path, merchant_token="tok-merchant-acme-rotated-98765")
    await sync_principals(hub.db, changed.stores, changed.merchants)
    status, _ = await page(client, f"/dashboard/stores/{STORE}")
    assert status == 303


async def test_a_forged_session_cookie_is_no_session(hub: Hub) -> None:
    client = await hub.owner()
    jar = client.session.cookie_jar
    real = jar.filter_cookies(client.make_url("/dashboard"))["sg_dash"].value
    jar.clear()
    head, body, sig = real.split(".")
    # The same claims under another signature; and claims changed under the real one.
    other = "A" * len(sig) if sig != "A" * len(sig) else "B" * len(sig)
    for forged in (f"{head}.{body}.{other}", f"{head}.{body[:-2]}xx.{sig}"):
        async with client.get(
            f"/dashboard/stores/{STORE}",
            headers={"Cookie": f"sg_dash={forged}"},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303
    async with client.get(
        f"/dashboard/stores/{STORE}", headers={"Cookie": f"sg_dash={real}"}, allow_redirects=False
    ) as resp:
        assert resp.status == 200


async def test_logging_out_needs_the_forms_token_and_ends_the_session(hub: Hub) -> None:
    client = await hub.owner()
    _, html = await page(client, f"/dashboard/stores/{STORE}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    assert csrf
    async with client.post("/dashboard/logout", data={}, allow_redirects=False) as resp:
        assert resp.status == 303
    assert (await page(client, f"/dashboard/stores/{STORE}"))[0] == 200
    async with client.post(
        "/dashboard/logout", data={"csrf": csrf[1]}, allow_redirects=False
    ) as resp:
        assert resp.headers["Location"] == "/dashboard/login"
    assert (await page(client, f"/dashboard/stores/{STORE}"))[0] == 303


# -- what the owner reads ----------------------------------------------------------------


async def test_the_store_page_shows_the_days_orders_sales_and_pickups(hub: Hub) -> None:
    service = hub.orders
    picked = await take_order(service, "meituan", 1, [cola(2)], 700)
    await take_order(service, "meituan", 2, [chips(1)], 1250)
    await take_order(service, "eleme", 3, [cola(1), chips(1)], 1600)
    await service.mark_picked_up(STORE, picked, courier="c-1", source="test")
    # A store sale (self-checkout), and one that fulfils a platform order: the latter is
    # that order's sale, counted once.
    await post_events(
        hub,
        [
            sale_event(
                1, 7.0, [{"barcode": COLA, "name": "可口可乐 330ml", "qty": 2, "price": 3.5}]
            ),
            sale_event(
                2, 7.0, [{"barcode": COLA, "name": "可口可乐 330ml", "qty": 2, "price": 3.5}]
            )
            | {"data": {"sale": "s-2", "channel": "locker", "items": [], "total": 7.0}},
        ],
    )
    dup = sale_event(3, 7.0, [{"barcode": COLA, "name": "可口可乐", "qty": 2, "price": 3.5}])
    dup["data"]["order"] = picked
    await post_events(hub, [dup])
    # Another merchant's store's orders never show here.
    await post_events(hub, [make_event(4, type_="access.denied", door="front", reason="expired")])

    client = await hub.owner()
    status, html = await page(client, f"/dashboard/stores/{STORE}")
    assert status == 200
    today = re.search(r'id="today".*?</section>', html, re.S)
    assert today
    rows = dict(re.findall(r'data-platform="(\w+)"><td>[^<]+</td><td class="n total">(\d+)<', html))
    assert rows == {"meituan": "2", "eleme": "1"}
    assert text_of(html, "today-total") == "3"
    # Sales today: the picked-up Meituan order ¥7.00 + two store sales ¥7.00 each.
    assert text_of(html, "today-revenue") == "¥21.00"
    assert '<svg id="sales-chart"' in html
    bars = re.findall(r'data-series="销售额" data-label="([^"]+)" data-value="(-?\d+)"', html)
    assert len(bars) == 7 and bars[-1][1] == "2100"
    # Pending: the two not picked up, oldest first, with pickup codes.
    pending = re.search(r'id="pending".*?</section>', html, re.S)
    assert pending
    assert re.findall(r'data-order="([\w-]+)"', pending[0]) == ["meituan-90002", "eleme-90003"]
    assert "已等 0 分钟" in pending[0]
    # No catalog costs in this hub: profit unknown, said so.
    assert "毛利暂无法计算" in html
    access = re.search(r'id="access".*?</section>', html, re.S)
    assert access and "已过期" in access[0]


async def test_platform_calls_failing_show_as_sync_failures(hub: Hub) -> None:
    # No platform is configured in this hub, so confirming the order fails and is retried.
    await take_order(hub.orders, "meituan", 5, [cola(1)], 350)

    async def failing() -> list[data.SyncFailure]:
        return await data.platform_failures(hub.db, STORE)

    found: list[data.SyncFailure] = []
    for _ in range(100):
        found = await failing()
        if found:
            break
        import asyncio

        await asyncio.sleep(0.05)
    assert found and found[0].target == "美团" and found[0].kind == "确认接单"
    assert found[0].status == "retrying" and "not configured" in found[0].error
    client = await hub.owner()
    _, html = await page(client, f"/dashboard/stores/{STORE}")
    failures = re.search(r'id="failures".*?</section>', html, re.S)
    assert failures and "美团 · 确认接单" in failures[0] and "重试中" in failures[0]


async def test_doors_and_devices_come_from_the_latest_events_without_a_bus(hub: Hub) -> None:
    await post_events(
        hub,
        [
            make_event(10, type_="door.opened", door="front"),
            make_event(11, type_="door.closed", door="front"),
            make_event(12, type_="door.held_open", door="back", seconds=60),
            make_event(13, type_="device.offline", device="printer-1"),
            make_event(14, type_="device.online", device="scanner-front"),
        ],
    )
    state = await data.store_state(hub.db, STORE, None)
    assert state.doors == {"front": "locked", "back": "held_open"}
    assert state.devices == {"printer-1": "error", "scanner-front": "online"}
    client = await hub.owner()
    _, html = await page(client, f"/dashboard/stores/{STORE}")
    doors = re.search(r'id="doors".*?</section>', html, re.S)
    assert doors and "长时间未关" in doors[0] and "故障" in doors[0]


async def test_days_are_china_days_and_refunds_leave_the_sales(hub: Hub) -> None:
    service = hub.orders
    first = await take_order(service, "meituan", 6, [cola(1)], 350)
    second = await take_order(service, "eleme", 7, [chips(2)], 2500)
    for order in (first, second):
        await service.mark_picked_up(STORE, order, courier="c", source="test")
    # The first was picked up at 23:30 China time yesterday (15:30 UTC).
    yesterday = data.today() - dt.timedelta(days=1)
    late = dt.datetime.combine(yesterday, dt.time(23, 30), data.CHINA)
    async with hub.db.write() as conn:
        await conn.execute(
            update(orders_table)
            .where(orders_table.c.id == first)
            .values(picked_up_at=utc_text(late))
        )
    sales = await data.sales_since(hub.db, STORE, yesterday)
    days = data.daily_sales(sales, [yesterday, data.today()], {COLA: 200, CHIPS: 800})
    assert [(d.revenue, d.sales) for d in days] == [(350, 1), (2500, 1)]
    # Profit: revenue - cost - commission (10 % in this test's orders).
    assert [d.profit for d in days] == [350 - 200 - 35, 2500 - 1600 - 250]
    # Without the chips' cost, the chips sale is left out of the profit, and counted.
    partial = data.daily_sales(sales, [yesterday, data.today()], {COLA: 200})
    assert [(d.profit, d.uncosted) for d in partial] == [(350 - 200 - 35, 0), (0, 1)]
    top = data.top_sellers(sales)
    assert [(t.barcode, t.qty) for t in top] == [(CHIPS, 2), (COLA, 1)]
    # A platform refund after pickup takes the order out of the sales.
    async with hub.db.write() as conn:
        await conn.execute(
            update(orders_table)
            .where(orders_table.c.id == second)
            .values(refunded_at=utc_text(late))
        )
    sales = await data.sales_since(hub.db, STORE, yesterday)
    assert [s.total for s in sales] == [350]


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_money_reads_back_as_the_same_fen(fen: int) -> None:
    shown = data.money(fen)
    assert re.fullmatch(r"-?¥\d{1,3}(,\d{3})*\.\d{2}", shown)
    assert data.yuan_to_fen(shown.replace("¥", "").replace(",", "")) == fen


def test_money_is_yuan_with_two_decimals() -> None:
    assert data.money(1250) == "¥12.50"
    assert data.money(5) == "¥0.05"
    assert data.money(-300) == "-¥3.00"
    assert data.money(123456789) == "¥1,234,567.89"
    assert data.money(None) == "—"
    assert data.yuan_to_fen(3.5) == 350
    assert data.yuan_to_fen("12.345") == 1235
    assert data.yuan_to_fen(True) is None and data.yuan_to_fen("x") is None


# -- with the catalog and stock ledger ---------------------------------------------------


async def test_catalog_costs_low_stock_and_restoring_a_picked_up_order(hub: Hub) -> None:
    from cloud.api.appkeys import STOCK_LEDGER
    from cloud.api.stock import STOCK_SERVICE
    from cloud.stock.product import Product

    app = hub.client.app
    assert app is not None
    stock, ledger = app[STOCK_SERVICE], app[STOCK_LEDGER]
    await stock.upsert_products(
        STORE,
        [
            Product(COLA, "可口可乐 330ml", 350, cost=200, shelf="A3", low_stock=5),
            Product(CHIPS, "薯片", 1250, cost=800, shelf="B1", low_stock=2),
        ],
    )
    await ledger.set_quantity(STORE, COLA, 3, "restock", "test:cola")
    await ledger.set_quantity(STORE, CHIPS, 10, "restock", "test:chips")
    order = await take_order(hub.orders, "meituan", 8, [cola(2)], 700)
    await hub.orders.mark_picked_up(STORE, order, courier="c-8", source="test")
    assert await ledger.quantity(STORE, COLA) == 1  # the pickup took two off the shelf

    client = await hub.owner()
    _, html = await page(client, f"/dashboard/stores/{STORE}")
    low = re.search(r'id="low-stock".*?</section>', html, re.S)
    assert low and f'data-barcode="{COLA}"' in low[0] and "剩 1（警戒 5）" in low[0]
    assert CHIPS not in low[0]
    # Gross profit today: ¥7.00 paid - 2 x ¥2.00 cost - ¥0.70 commission.
    assert text_of(html, "today-profit") == "¥2.30"

    picked = re.search(r'id="picked-up".*?</section>', html, re.S)
    assert picked and "一键恢复库存" in picked[0]
    action = re.search(r'<form method="post" action="([^"]+restore-stock)"', picked[0])
    csrf = re.search(r'name="csrf" value="([^"]+)"', picked[0])
    assert action and csrf and order in action[1]
    # Without the form's token: refused, nothing restored.
    async with client.post(action[1], data={"csrf": "x"}, allow_redirects=False) as resp:
        assert "done=restore_failed" in resp.headers["Location"]
    assert await ledger.quantity(STORE, COLA) == 1
    async with client.post(action[1], data={"csrf": csrf[1]}) as resp:
        assert resp.status == 200
        assert "已恢复库存 2 件" in await resp.text()
    assert await ledger.quantity(STORE, COLA) == 3
    # Once per order: a second tap restores nothing more.
    async with client.post(action[1], data={"csrf": csrf[1]}) as resp:
        assert "恢复库存失败" in await resp.text()
    assert await ledger.quantity(STORE, COLA) == 3


async def test_another_merchant_cannot_restore_stock_of_my_store(hub: Hub) -> None:
    order = await take_order(hub.orders, "meituan", 9, [cola(1)], 350)
    await hub.orders.mark_picked_up(STORE, order, courier="c-9", source="test")
    client = await hub.owner(OTHER_MERCHANT_TOKEN)
    _, html = await page(client, f"/dashboard/stores/{OTHER_STORE}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    assert csrf
    path = f"/dashboard/stores/{STORE}/orders/{order}/restore-stock"
    async with client.post(path, data={"csrf": csrf[1]}, allow_redirects=False) as resp:
        assert resp.status == 403
