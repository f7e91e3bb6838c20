"""Each platform end to end through the hub's application: a fake platform on loopback
pushes orders signed as the platform does, and checks the hub's signed calls back.

The hub application, its database (SQLite; PostgreSQL too for the main flow) and the
fake platform are real and talk HTTP over loopback; only the hub's process is left out
(test_platform_real_hub.py starts that).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from cloud.api.platforms import ORDERS
from cloud.app import create_app
from cloud.config import HubConfig
from cloud.db.engine import Database
from cloud.orders.service import OrderService
from tests.cloud.orders.order_fixtures import (
    PLATFORM_TOKEN,
    STORE,
    fresh_database,
    hub_config,
    rows,
)
from tests.support.platforms import PLATFORMS, FakeOrder, FakePlatform

_ids = itertools.count(4781320682406083640)

# The answer each platform expects for a push it made, in its own shape.
REPLY_CHECKS = {
    "meituan": lambda body: body == {"data": "ok"},
    "eleme": lambda body: (
        body["body"] == {"errno": 0, "error": "success", "data": ""}
        and body["cmd"] == "resp.order.create"
        and body["sign"].isupper()
    ),
    "jddj": lambda body: body == {"code": "0", "msg": "success", "data": ""},
    "douyin": lambda body: body == {"code": 0, "msg": "success"},
}


def new_order(**kw: Any) -> FakeOrder:
    return FakeOrder(str(next(_ids)), **kw)


@dataclass
class Hub:
    client: TestClient
    db: Database
    service: OrderService
    cfg: HubConfig

    @property
    def url(self) -> str:
        return str(self.client.make_url("")).rstrip("/")


@pytest.fixture(params=PLATFORMS)
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakePlatform]:
    async with FakePlatform(request.param, token=PLATFORM_TOKEN) as platform:
        yield platform


async def start_hub(tmp_path: Path, fake: FakePlatform, db_url: str, **cfg_kw: Any) -> Any:
    cfg = hub_config(tmp_path, {fake.name: fake.url}, **cfg_kw)
    db_cm = fresh_database(db_url, cfg)
    db = await db_cm.__aenter__()
    app = create_app(cfg, db)
    client = TestClient(TestServer(app))
    await client.start_server()
    return Hub(client, db, app[ORDERS], cfg), db_cm


@pytest.fixture
async def hub(tmp_path: Path, fake: FakePlatform) -> AsyncIterator[Hub]:
    handle, db_cm = await start_hub(tmp_path, fake, f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        yield handle
    finally:
        await handle.client.close()
        await db_cm.__aexit__(None, None, None)


async def test_a_good_push_is_stored_coded_normalized_and_auto_accepted(
    tmp_path: Path, fake: FakePlatform, db_url: str
) -> None:
    hub, db_cm = await start_hub(tmp_path, fake, db_url)
    try:
        order = new_order(day_seq=12, note="放门口 leave at door", total=1950, commission=195)
        status, body = await fake.push_order(hub.url, order)
        assert status == 200, body
        assert REPLY_CHECKS[fake.name](body), body

        stored = await hub.service.get(STORE, f"{fake.name}-{order.order_id}")
        assert stored is not None
        agent_view = stored.to_agent()
        code = agent_view.pop("pickup_code")
        assert len(code) == 6 and code.isdigit()
        assert agent_view == {
            "id": f"{fake.name}-{order.order_id}",
            "platform": fake.name,
            "platform_order_id": order.order_id,
            "day_seq": 12 if fake.name != "douyin" else 0,
            "status": "pending",
            "items": [
                {"barcode": "6901234567892", "name": "可口可乐 330ml", "qty": 2, "shelf": ""},
                {"barcode": "6920000000017", "name": "薯片 Chips", "qty": 1, "shelf": ""},
            ],
            "note": "放门口 leave at door",
        }
        assert [(i.sku, i.price) for i in stored.items] == [("sku-cola", 350), ("sku-chips", 1250)]
        assert stored.total == 1950
        assert stored.shop_id == STORE
        if fake.name in ("meituan", "eleme"):
            assert stored.commission == 195

        # auto_accept: the hub confirms the order, signed as the platform checks it.
        call = await fake.wait_for_call("confirm_order")
        assert call.signature_ok, call
        ids = {
            "meituan": lambda p: p["order_id"],
            "eleme": lambda p: p["body"]["order_id"],
            "jddj": lambda p: str(p["jd_param_json"]["orderId"]),
            "douyin": lambda p: p["args"]["shop_order_id"],
        }
        assert ids[fake.name](call.params) == order.order_id
        await wait_call_status(hub.service, stored.id, "confirm_order", "done")
        log = await hub.service.order_log(stored.id)
        assert log[0]["to_status"] == "pending" and log[0]["source"] == f"{fake.name}:push"
        assert any("confirm_order: done" in entry["detail"] for entry in log)
        # Pulled orders had to be fetched: that call was signed properly too.
        assert all(c.signature_ok for c in fake.calls), fake.calls
    finally:
        await hub.client.close()
        await db_cm.__aexit__(None, None, None)


async def wait_call_status(service: OrderService, order_id: str, kind: str, status: str) -> None:
    import asyncio

    async with asyncio.timeout(5):
        while True:
            calls = [c for c in await service.platform_calls(order_id) if c["kind"] == kind]
            if calls and calls[-1]["status"] == status:
                return
            await asyncio.sleep(0.02)


async def test_a_replayed_push_is_the_same_order_confirmed_once(
    hub: Hub, fake: FakePlatform
) -> None:
    order = new_order()
    first = await fake.push_order(hub.url, order)
    second = await fake.push_order(hub.url, order)
    assert first[0] == second[0] == 200
    found = await hub.service.list_orders(STORE)
    assert [o.platform_order_id for o in found] == [order.order_id]
    await wait_call_status(hub.service, found[0].id, "confirm_order", "done")
    calls = await hub.service.platform_calls(found[0].id)
    assert [c["kind"] for c in calls] == ["confirm_order"]
    assert len(fake.calls_of("confirm_order")) == 1
    # A platform that pushes only the order id is asked for the order once.
    assert len(fake.calls_of("fetch_order")) == (0 if fake.name == "meituan" else 1)


async def test_a_bad_signature_is_refused_401_and_recorded(hub: Hub, fake: FakePlatform) -> None:
    status, body = await fake.push_order(hub.url, new_order(), secret="not-the-secret")
    assert status == 401, body
    assert body["error"]["code"] == "bad_signature"
    assert "not-the-secret" not in str(body)
    assert await hub.service.list_orders(STORE) == []
    recorded = await rows(hub.db, "SELECT store_id, endpoint, status, reason FROM rejections")
    assert recorded == [
        {
            "store_id": "",
            "endpoint": f"/api/v1/platforms/{fake.name}/push",
            "status": 401,
            "reason": recorded[0]["reason"],
        }
    ]
    assert recorded[0]["reason"].startswith("bad signature")


async def test_an_unsigned_push_is_refused_401(hub: Hub, fake: FakePlatform) -> None:
    status, body = await fake.push_raw(hub.url, b"order_id=1&app_poi_code=demo-001")
    assert status == 401 if fake.name != "douyin" else status in (400, 401), body


MALFORMED = {
    "meituan": ({"order_id": "1", "app_poi_code": STORE, "detail": "[{]"}, "detail is not JSON"),
    "eleme": ({"cmd": "order.create", "body": "{nope"}, "body is not JSON"),
    "jddj": ({"jd_param_json": '{"statusId": "32000"}'}, "billId is missing"),
    "douyin": (b'{"not": "a list"}', "non-empty JSON list"),
}


async def test_a_malformed_push_is_refused_400_with_the_reason(
    hub: Hub, fake: FakePlatform
) -> None:
    content, reason = MALFORMED[fake.name]
    if isinstance(content, bytes):
        status, body = await fake.push_signed_body(hub.url, content)
    else:
        status, body = await fake.push_signed_params(hub.url, dict(content))
    assert status == 400, body
    assert body["error"]["code"] == "bad_push"
    assert reason in body["error"]["message"]
    recorded = await rows(hub.db, "SELECT status, reason FROM rejections")
    assert recorded == [{"status": 400, "reason": body["error"]["message"]}]


async def test_an_order_for_an_unknown_shop_is_refused_400(hub: Hub, fake: FakePlatform) -> None:
    status, body = await fake.push_order(hub.url, new_order(shop="shop-nobody-has"))
    assert status == 400, body
    assert "shop-nobody-has" in body["error"]["message"]
    assert await hub.service.list_orders(STORE) == []


async def test_a_cancellation_cancels_the_order_and_reaches_listeners(
    hub: Hub, fake: FakePlatform
) -> None:
    heard: list[tuple[str, str, str]] = []

    async def listener(order: Any, kind: str) -> None:
        heard.append((order.id, kind, order.status))

    hub.service.on_change(listener)
    order = new_order()
    assert (await fake.push_order(hub.url, order))[0] == 200
    status, body = await fake.push_cancel(hub.url, order.order_id)
    assert status == 200, body
    oid = f"{fake.name}-{order.order_id}"
    stored = await hub.service.get(STORE, oid)
    assert stored is not None and stored.status == "cancelled"
    assert stored.to_agent()["status"] == "cancelled"
    assert heard == [(oid, "created", "pending"), (oid, "cancelled", "cancelled")]
    # Cancelled again (a replay): nothing changes, nobody is told twice.
    assert (await fake.push_cancel(hub.url, order.order_id))[0] == 200
    assert len(heard) == 2
    log = await hub.service.order_log(oid)
    cancels = [e for e in log if e["to_status"] == "cancelled" != e["from_status"]]
    assert len(cancels) == 1 and cancels[0]["from_status"] == "pending"
    assert cancels[0]["source"] == f"{fake.name}:push"


async def test_pickup_tells_the_platform_and_a_later_refund_is_a_refund_record(
    hub: Hub, fake: FakePlatform
) -> None:
    order = new_order(total=2300)
    assert (await fake.push_order(hub.url, order))[0] == 200
    oid = f"{fake.name}-{order.order_id}"
    picked = await hub.service.mark_picked_up(STORE, oid, courier="rider-7", source="store:demo")
    assert picked is not None and picked.status == "picked_up"
    call = await fake.wait_for_call("picking_done")
    assert call.signature_ok, call
    # Told once, however often the store reports it.
    again = await hub.service.mark_picked_up(STORE, oid, courier="rider-7", source="store:demo")
    assert again is not None and again.status == "picked_up"
    await wait_call_status(hub.service, oid, "picking_done", "done")
    assert [c["kind"] for c in await hub.service.platform_calls(oid)] == [
        "confirm_order",
        "picking_done",
    ]

    status, _ = await fake.push_refund(hub.url, order.order_id)
    assert status == 200
    after = await hub.service.get(STORE, oid)
    assert after is not None and after.status == "picked_up" and after.refunded_at
    refunds = await hub.service.refunds(STORE)
    assert [(r["order_id"], r["amount"]) for r in refunds] == [(oid, 2300)]
    assert (await fake.push_refund(hub.url, order.order_id))[0] == 200
    assert len(await hub.service.refunds(STORE)) == 1


async def test_without_auto_accept_nothing_is_confirmed(tmp_path: Path, fake: FakePlatform) -> None:
    hub, db_cm = await start_hub(
        tmp_path, fake, f"sqlite:///{tmp_path / 'hub.db'}", auto_accept=False
    )
    try:
        order = new_order()
        assert (await fake.push_order(hub.url, order))[0] == 200
        oid = f"{fake.name}-{order.order_id}"
        assert (await hub.service.get(STORE, oid)) is not None
        assert await hub.service.platform_calls(oid) == []
        assert fake.calls_of("confirm_order") == []
    finally:
        await hub.client.close()
        await db_cm.__aexit__(None, None, None)


async def test_stock_updates_reach_the_platform_signed(hub: Hub, fake: FakePlatform) -> None:
    queued = await hub.service.update_stock(
        STORE, [{"sku": "sku-cola", "barcode": "6901234567892", "qty": 17}]
    )
    assert queued == 4  # the store sells on every platform
    call = await fake.wait_for_call("update_stock")
    assert call.signature_ok, call
    assert "17" in str(call.params)


async def test_an_unconfigured_platform_is_404(hub: Hub) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(hub.url + "/api/v1/platforms/ubereats/push", data=b"x") as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["code"] == "not_found"
