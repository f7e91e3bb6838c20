"""The owner dashboard in a real browser on a phone-sized screen, over a real store: the
hub, the store's agent and its simulated hardware as processes, mosquitto, and fake
Meituan and Eleme servers pushing signed orders through the hub's webhooks. A courier
collects one order at the door (the pickup code typed on the simulated scanner); the
store's self-checkout sale is posted as the agent posts its events.

Needs /usr/bin/chromium and the `playwright` package (no browser download), mosquitto.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import re
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from cloud.db.times import utc_text
from tests.e2e.test_door import decide, reason
from tests.support.agent import AgentHandle, make_keys, start_agent
from tests.support.broker import BrokerHandle, start_broker
from tests.support.browser import PHONE, SCREENSHOTS, require_chromium
from tests.support.hub import HubHandle, start_hub
from tests.support.platforms import FakeOrder, FakePlatform
from tests.support.sim import SimHandle, start_sim, wait_until

require_chromium()

MERCHANT_TOKEN = "tok-merchant-acme-browser-0123456789"
OTHER_TOKEN = "tok-merchant-other-browser-0123456789"
T = TypeVar("T")
_ids = itertools.count(int(time.time() * 1000))


class LoopThread:
    """An asyncio loop of its own, for the fake platforms' servers: Playwright's sync API
    must not run inside a loop, so the test's own thread has none."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def with_merchants(cfg: dict[str, Any]) -> None:
    cfg["stores"].append({"id": "demo-002", "name": "别家店", "token": "tok-demo-002-0123456789ab"})
    cfg["merchants"] = [
        {"id": "acme", "token": MERCHANT_TOKEN, "stores": ["demo-001"]},
        {"id": "other", "token": OTHER_TOKEN, "stores": ["demo-002"]},
    ]


@dataclass
class Store:
    hub: HubHandle
    agent: AgentHandle
    sim: SimHandle
    broker: BrokerHandle
    orders: dict[str, list[str]]  # platform -> hub order ids
    picked_up: str


def pending_code(hub: HubHandle, order_id: str) -> str:
    status, body = hub.request("GET", "/api/v1/stores/demo-001/orders?status=pending")
    assert status == 200, body
    return next(o["pickup_code"] for o in body["orders"] if o["id"] == order_id)


def order_status(hub: HubHandle, order_id: str) -> str | None:
    status, body = hub.request("GET", "/api/v1/stores/demo-001/orders")
    assert status == 200, body
    return next((o["status"] for o in body["orders"] if o["id"] == order_id), None)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    run_dir = tmp_path_factory.mktemp("store")
    make_keys(run_dir)
    loop = LoopThread()
    fakes = {name: FakePlatform(name) for name in ("meituan", "eleme")}
    for fake in fakes.values():
        loop.run(fake.start())
    broker = start_broker(run_dir)
    env = {"SHOPGATE_MQTT_URL": broker.url}
    env |= {f"SHOPGATE_{n.upper()}_URL": f.url for n, f in fakes.items()}
    hub = start_hub(run_dir, env=env, edit=with_merchants)
    sim = start_sim(run_dir)
    agent = start_agent(run_dir, env={**hub.agent_env, "SHOPGATE_MQTT_URL": broker.url})
    try:
        orders: dict[str, list[str]] = {"meituan": [], "eleme": []}
        for platform, count in (("meituan", 2), ("eleme", 1)):
            for _ in range(count):
                order = FakeOrder(str(next(_ids)))
                status, body = loop.run(fakes[platform].push_order(hub.url, order))
                assert status == 200, (platform, body)
                orders[platform].append(f"{platform}-{order.order_id}")
        # The courier collects the first Meituan order: types its code at the door.
        picked = orders["meituan"][0]
        wait_until(lambda: agent.journal.order_status(picked) == "pending", 10, "the order")
        granted = decide(agent, sim, pending_code(hub, picked))
        assert reason(granted) == "granted", granted
        wait_until(lambda: order_status(hub, picked) == "picked_up", 15, "the pickup at the hub")
        # A self-checkout sale of the store, as the agent posts it.
        sale = {
            "id": f"demo-001-sale-{next(_ids)}",
            "store": "demo-001",
            "seq": 900_000,
            "ts": utc_text(dt.datetime.now(dt.UTC)),
            "type": "sale.completed",
            "data": {
                "sale": "s-1",
                "channel": "checkout",
                "items": [{"barcode": "6901234567892", "name": "可口可乐", "qty": 1, "price": 3.5}],
                "total": 3.5,
                "payment": None,
                "order": None,
            },
        }
        status, body = hub.post_events([sale])
        assert status == 200, body
        yield Store(hub, agent, sim, broker, orders, picked)
    finally:
        agent.stop()
        sim.stop()
        hub.stop()
        broker.stop()
        for fake in fakes.values():
            loop.run(fake.close())
        loop.close()


def log_in(phone: Any, hub: HubHandle, token: str) -> None:
    phone.goto(f"{hub.url}/dashboard")
    assert phone.url.endswith("/dashboard/login")
    phone.locator("#token").fill(token)
    button = phone.locator("button[type=submit]", has_text="登录")
    assert button.bounding_box()["height"] >= 44
    with phone.expect_navigation():
        button.tap()


def test_the_owner_sees_the_stores_day_on_a_phone(phone: Any, store: Store) -> None:
    hub = store.hub
    log_in(phone, hub, MERCHANT_TOKEN)
    assert phone.url.endswith("/dashboard/stores/demo-001"), phone.content()[-1500:]
    assert phone.locator("#store-name").inner_text() == "演示店 Demo store"
    # Online, from the agent's retained status; doors and devices from its retained state.
    phone.wait_for_function("document.querySelector('#online')")
    assert phone.locator("#online").inner_text() == "在线"
    door = phone.locator("#doors [data-door=front]")
    assert "已锁" in door.inner_text()
    assert phone.locator("#doors [data-device=printer-1]").count() == 1
    assert "依据最近" not in phone.locator("#doors").inner_text()  # the state, not events
    assert "营业中" in phone.locator("#presence").inner_text()

    # Today's orders per platform: what the fake platforms pushed through the webhooks.
    counts = {
        row.get_attribute("data-platform"): int(row.locator(".total").inner_text())
        for row in phone.locator("#today tbody tr").all()
    }
    assert counts == {"meituan": 2, "eleme": 1}
    assert phone.locator("#today-total").inner_text() == "3"

    # Sales: the Meituan order collected at the door (¥19.50) and the checkout sale (¥3.50).
    assert phone.locator("#today-revenue").inner_text() == "¥23.00"
    chart = phone.locator("#sales-chart")
    assert chart.is_visible()
    box = chart.bounding_box()
    assert box["width"] >= 250 and box["x"] + box["width"] <= PHONE["width"]
    today_bar = phone.locator('#sales-chart rect.bar[data-series="销售额"]').last
    assert today_bar.get_attribute("data-value") == "2300"
    assert today_bar.bounding_box()["height"] > 10

    # Pending pickups: the two not collected, oldest first, with their codes and age.
    pending = phone.locator("#pending li")
    ids = [li.get_attribute("data-order") for li in pending.all()]
    assert ids == [store.orders["meituan"][1], store.orders["eleme"][0]]
    assert "取货码" in pending.first.inner_text() and "已等" in pending.first.inner_text()
    # The courier's entry is in the access log, the collected order among the picked up.
    assert "通过" in phone.locator("#access").inner_text()
    assert phone.locator(f'#picked-up [data-order="{store.picked_up}"]').count() == 1

    # Laid out for the phone: nothing wider than the screen, thumb-sized buttons.
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for button in phone.locator("main button, header button").all():
        assert button.bounding_box()["height"] >= 44
    phone.screenshot(path=str(SCREENSHOTS / "shopgate-dashboard.png"), full_page=True)
    assert phone.problems == []


def test_another_merchant_cannot_see_the_store(phone: Any, store: Store) -> None:
    hub = store.hub
    log_in(phone, hub, OTHER_TOKEN)
    assert phone.url.endswith("/dashboard/stores/demo-002")
    response = phone.goto(f"{hub.url}/dashboard/stores/demo-001")
    assert response.status == 403
    assert phone.locator("h1").inner_text() == "无权查看"
    assert "演示店" not in phone.content()
    # The browser reports the 403 itself; nothing else went wrong on the page.
    assert [p for p in phone.problems if "403" not in p] == []


def test_a_wrong_token_stays_on_the_login_page(phone: Any, store: Store) -> None:
    log_in(phone, store.hub, "tok-wrong-000000000000000000")
    assert phone.url.endswith("/dashboard/login")
    assert "令牌不正确" in phone.locator(".error").inner_text()
    response = phone.goto(f"{store.hub.url}/dashboard/stores/demo-001")
    assert response.url.endswith("/dashboard/login")


def test_the_running_hub_serves_its_openapi_document(store: Store) -> None:
    status, doc = store.hub.request("GET", "/api/v1/openapi.json", token=None)
    assert status == 200 and doc["openapi"].startswith("3.1")
    assert "/api/v1/stores/{store}/events" in doc["paths"]
    assert not re.search(r"tok-", str(doc))  # no token of the config leaks into it
