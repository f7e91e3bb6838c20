"""The rider at the door, in Debian's chromium on a phone-sized screen, through the whole
path: the signing Meituan fake pushes an order -> the hub -> mosquitto -> the agent with
the simulator; the rider opens the door poster's page, taps 骑手取货, finds their order,
types the last 4 digits of its number; the door opens in the simulator, the page shows
门已打开 with the pick list, `pickup.completed` reaches the hub and Meituan hears
picking-done. No pickup code anywhere."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.e2e.test_door import unlocks
from tests.support.agent import start_agent
from tests.support.broker import start_broker
from tests.support.browser import PHONE, SCREENSHOTS, chromium, phone_page, require_chromium
from tests.support.hub import start_hub
from tests.support.platforms import FakeOrder, FakePlatform
from tests.support.sim import SimHandle, wait_until

require_chromium()
T = TypeVar("T")


@pytest.fixture
def background_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The platform fake is asyncio; Playwright's sync API wants this thread's loop free."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def test_a_rider_scans_the_poster_picks_their_order_and_the_door_opens(
    sim: SimHandle, run_dir: Path, background_loop: asyncio.AbstractEventLoop
) -> None:
    def run(coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, background_loop).result(30)

    broker = start_broker(run_dir)
    meituan = FakePlatform("meituan")
    run(meituan.__aenter__())
    env = {"SHOPGATE_MQTT_URL": broker.url, "SHOPGATE_MEITUAN_URL": meituan.url}
    try:
        with (
            start_hub(run_dir, env=env) as hub,
            start_agent(run_dir, env={**hub.agent_env, "SHOPGATE_MQTT_URL": broker.url}) as agent,
            chromium() as browser,
            phone_page(browser) as phone,
        ):
            number = f"{int(time.time())}5307"
            order = FakeOrder(number, day_seq=42)
            status, _ = run(meituan.push_order(hub.url, order))
            assert status == 200
            order_id = f"meituan-{number}"
            wait_until(
                lambda: agent.journal.order_status(order_id) == "pending", 10, "the order in store"
            )

            assert phone.goto(f"{hub.url}/s/demo-001/front").status == 200
            phone.locator("#courier-tab").tap()
            mine = phone.locator("form[data-order='meituan-42']")
            mine.wait_for()
            assert "美团 #42" in mine.inner_text()
            assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            phone.screenshot(path=str(SCREENSHOTS / "shopgate-courier-list.png"), full_page=True)

            mine.locator("input[name=tail]").fill("1111")  # a wrong tail first
            mine.locator("button").tap()
            phone.locator("#error").wait_for()
            assert "后四位不正确" in phone.locator("#error").inner_text()
            assert unlocks(sim) == 0

            mine = phone.locator("form[data-order='meituan-42']")
            mine.locator("input[name=tail]").fill("5307")
            mine.locator("button").tap()
            phone.locator("#status").wait_for()
            assert phone.locator("#status").inner_text() == "门已打开"
            picks = phone.locator("#picks").inner_text()
            assert "可口可乐 330ml" in picks and "× 2" in picks
            assert order.note in phone.locator("#note").inner_text()
            assert order.address in phone.locator("#delivery").inner_text()
            assert phone.locator("#map").get_attribute("href").startswith("https://uri.amap.com/")
            assert phone.locator("#contact").inner_text() == order.phone
            phone.screenshot(path=str(SCREENSHOTS / "shopgate-courier-open.png"), full_page=True)
            assert phone.problems == []

            wait_until(lambda: unlocks(sim) == 1, 5, "the door to open")
            agent.wait_event("pickup.completed", lambda e: e["data"]["order"] == order_id)
            done = run(meituan.wait_for_call("picking_done", within_s=15))
            assert done.signature_ok and number in str(done.params)
    finally:
        run(meituan.__aexit__(None, None, None))
        broker.stop()
