"""A Meituan order, end to end through real processes: the fake Meituan pushes a signed
order -> the hub (process) -> mosquitto -> the agent (process, with the simulator) ->
the courier types the pickup code -> the door opens -> pickup.completed goes back to
the hub -> Meituan receives a signed picking-done call. Then the same with the agent
offline when the order is pushed: it catches up when it starts."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest

from tests.e2e.test_door import decide, reason, unlocks
from tests.support.agent import Keys, start_agent
from tests.support.broker import start_broker
from tests.support.hub import start_hub
from tests.support.platforms import FakeOrder, FakePlatform
from tests.support.sim import SimHandle, wait_until

_ids = itertools.count(int(time.time()))


def pickup_code(hub, order_id: str) -> str:
    status, body = hub.request("GET", "/api/v1/stores/demo-001/orders?status=pending")
    assert status == 200, body
    return next(o["pickup_code"] for o in body["orders"] if o["id"] == order_id)


@pytest.mark.parametrize("agent_online_at_push", [True, False], ids=["online", "offline"])
async def test_a_meituan_order_is_picked_up_at_the_door_and_meituan_hears_of_it(
    sim: SimHandle, keys: Keys, run_dir: Path, agent_online_at_push: bool
):
    broker = start_broker(run_dir)
    async with FakePlatform("meituan") as meituan:
        env = {"SHOPGATE_MQTT_URL": broker.url, "SHOPGATE_MEITUAN_URL": meituan.url}
        hub = await asyncio.to_thread(start_hub, run_dir, env=env)
        agent_env = {**hub.agent_env, "SHOPGATE_MQTT_URL": broker.url}
        agent = None
        try:
            if agent_online_at_push:
                agent = await asyncio.to_thread(start_agent, run_dir, env=agent_env)
            order = FakeOrder(str(next(_ids)))
            status, body = await meituan.push_order(hub.url, order)
            assert status == 200 and body == {"data": "ok"}, body
            assert (await meituan.wait_for_call("confirm_order", within_s=10)).signature_ok
            order_id = f"meituan-{order.order_id}"
            code = await asyncio.to_thread(pickup_code, hub, order_id)
            if agent is None:  # the store was offline; it starts now and catches up
                agent = await asyncio.to_thread(start_agent, run_dir, env=agent_env)
            journal = agent.journal
            await asyncio.to_thread(
                wait_until,
                lambda: journal.order_status(order_id) == "pending",
                10,
                "the order at the store",
            )
            granted = await asyncio.to_thread(decide, agent, sim, code)
            assert reason(granted) == "granted"
            assert {i["name"] for i in granted["data"]["items"]} == {"可口可乐 330ml", "薯片 Chips"}
            await asyncio.to_thread(wait_until, lambda: unlocks(sim) == 1, 3, "the door to open")
            done = await meituan.wait_for_call("picking_done", within_s=15)
            assert done.signature_ok and order.order_id in str(done.params)
        finally:
            if agent is not None:
                await asyncio.to_thread(agent.stop)
            await asyncio.to_thread(hub.stop)
            broker.stop()
