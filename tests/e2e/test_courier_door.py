"""The courier at the door, for programs (CONTRACTS section 8), through real processes: a
Meituan order pushed by the signing fake -> the hub -> mosquitto -> the agent with the
simulator. The courier lists the door's open orders, claims theirs with the last 4
digits of the order number, the door opens, `pickup.completed` reaches the hub and
Meituan hears picking-done; a replay of the same claim finds nothing open."""

from __future__ import annotations

import asyncio
import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.e2e.test_door import unlocks
from tests.support.agent import Keys, start_agent
from tests.support.api_shapes import assert_documented
from tests.support.broker import start_broker
from tests.support.hub import HubHandle, start_hub
from tests.support.platforms import FakeOrder, FakePlatform
from tests.support.sim import SimHandle, wait_until

DOOR = "/api/v1/stores/demo-001/doors/front/courier"
DOOR_ROUTE = "/api/v1/stores/{store}/doors/{door}/courier"
_ids = itertools.count(int(time.time()) * 1000)


def claim(hub: HubHandle, body: dict[str, Any]) -> tuple[int, Any]:
    return hub.request("POST", DOOR, body, token=None)


def order_status(hub: HubHandle, order_id: str) -> str | None:
    status, body = hub.request("GET", "/api/v1/stores/demo-001/orders")
    assert status == 200, body
    return next((o["status"] for o in body["orders"] if o["id"] == order_id), None)


async def test_a_courier_claims_their_order_at_the_door_and_it_opens(
    sim: SimHandle, keys: Keys, run_dir: Path
) -> None:
    broker = start_broker(run_dir)
    async with FakePlatform("meituan") as meituan:
        env = {"SHOPGATE_MQTT_URL": broker.url, "SHOPGATE_MEITUAN_URL": meituan.url}
        hub = await asyncio.to_thread(start_hub, run_dir, env=env)
        agent = await asyncio.to_thread(
            start_agent, run_dir, env={**hub.agent_env, "SHOPGATE_MQTT_URL": broker.url}
        )
        try:
            number = f"{next(_ids)}4821"
            order = FakeOrder(number, day_seq=27)
            status, _ = await meituan.push_order(hub.url, order)
            assert status == 200
            order_id = f"meituan-{number}"
            await asyncio.to_thread(
                wait_until,
                lambda: agent.journal.order_status(order_id) == "pending",
                10,
                "the order at the store",
            )
            status, listed = await asyncio.to_thread(hub.request, "GET", DOOR, token=None)
            assert status == 200
            assert_documented("GET", DOOR_ROUTE, status, listed)
            [mine] = [o for o in listed["orders"] if o["day_seq"] == 27]
            assert mine["platform"] == "meituan" and mine["ordered_at"]
            assert set(mine) == {"platform", "day_seq", "ordered_at"}  # no customer in it
            assert order.address not in str(listed) and order.phone not in str(listed)

            wrong = await asyncio.to_thread(
                claim, hub, {"platform": "meituan", "day_seq": 27, "tail": "1234"}
            )
            assert wrong[0] == 403 and wrong[1]["error"]["code"] == "wrong_tail"
            assert_documented("POST", DOOR_ROUTE, *wrong)
            none = await asyncio.to_thread(
                claim, hub, {"platform": "eleme", "day_seq": 27, "tail": "4821"}
            )
            assert none[0] == 404 and none[1]["error"]["code"] == "no_such_order"
            assert unlocks(sim) == 0

            status, body = await asyncio.to_thread(
                claim, hub, {"platform": "meituan", "day_seq": 27, "tail": "4821"}
            )
            assert status == 200, body
            assert_documented("POST", DOOR_ROUTE, status, body)  # CONTRACTS section 8's shape
            assert body["order"] == order_id and body["opened"] is True
            assert body["pass"].count(".") == 2
            assert {(i["name"], i["qty"]) for i in body["items"]} == {
                ("可口可乐 330ml", 2),
                ("薯片 Chips", 1),
            }
            assert body["note"] == order.note
            delivery = body["delivery"]
            assert delivery["address"] == order.address and delivery["contact"] == order.phone
            assert delivery["map"].startswith(f"https://uri.amap.com/marker?position={order.lng},")
            assert unlocks(sim) == 1
            agent.wait_event("pickup.completed", lambda e: e["data"]["order"] == order_id)
            done = await meituan.wait_for_call("picking_done", within_s=15)
            assert done.signature_ok and number in str(done.params)

            # Picked up: the same claim again opens nothing and the order is not listed.
            await asyncio.to_thread(
                wait_until, lambda: order_status(hub, order_id) == "picked_up", 10, "picked up"
            )
            again = await asyncio.to_thread(
                claim, hub, {"platform": "meituan", "day_seq": 27, "tail": "4821"}
            )
            assert again[0] == 404
            _, listed = await asyncio.to_thread(hub.request, "GET", DOOR, token=None)
            assert all(o["day_seq"] != 27 for o in listed["orders"])
            assert unlocks(sim) == 1
        finally:
            await asyncio.to_thread(agent.stop)
            await asyncio.to_thread(hub.stop)
            broker.stop()


async def test_a_burst_of_wrong_tails_without_cookies_is_paused_and_the_right_one_waits(
    run_dir: Path,
) -> None:
    async with FakePlatform("meituan") as meituan:
        hub = await asyncio.to_thread(start_hub, run_dir, env={"SHOPGATE_MEITUAN_URL": meituan.url})
        try:
            number = f"{next(_ids)}7310"
            status, _ = await meituan.push_order(hub.url, FakeOrder(number, day_seq=31))
            assert status == 200

            def guess(n: int) -> tuple[int, Any]:
                tail = f"{n:04d}" if f"{n:04d}" != "7310" else "0000"
                return claim(hub, {"platform": "meituan", "day_seq": 31, "tail": tail})

            with ThreadPoolExecutor(16) as pool:
                answers = list(pool.map(guess, range(40)))
            codes = [s for s, _ in answers]
            # Counted at the decision: however the burst interleaves, at most the
            # visitor's 5 tries are checked; every other is paused.
            assert codes.count(403) <= 5 and codes.count(403) + codes.count(429) == 40
            paused = next(b for s, b in answers if s == 429)
            assert paused["error"]["code"] == "paused"
            right = claim(hub, {"platform": "meituan", "day_seq": 31, "tail": "7310"})
            assert right[0] == 429  # the guesser cannot tell the right tail while paused
        finally:
            await asyncio.to_thread(hub.stop)
