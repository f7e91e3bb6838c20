"""Orders from the hub to a store and the pickup back, with every part real: the hub
application with its order service, database and MQTT bus (in this process), mosquitto,
the simulator and the agent process.

The story: an order is created -> the agent holds it with its pickup code; the courier's
pass from the hub opens the door for that order alone; the agent's pickup.completed
event comes back through the relay and the order service hears of it exactly once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from cloud.db.deliveries import get_delivery
from tests.cloud.delivery.inproc import (
    STORE,
    TOKEN,
    InprocHub,
    cancel_order,
    inproc_hub,
    new_order,
    poll,
)
from tests.e2e.test_door import reason, unlocks
from tests.support.agent import AgentHandle, make_keys, start_agent
from tests.support.broker import BrokerHandle
from tests.support.sim import SimHandle, start_sim, wait_until


async def test_an_order_reaches_the_store_is_cancelled_and_a_courier_picks_up_another(
    tmp_path: Path, broker: BrokerHandle
) -> None:
    make_keys(tmp_path)  # kid demo, as the demo agent's config expects
    with start_sim(tmp_path) as sim:
        async with inproc_hub(tmp_path, broker.url) as hub:
            env = {
                "SHOPGATE_MQTT_URL": broker.url,
                "SHOPGATE_HUB_URL": hub.url,
                "SHOPGATE_STORE_TOKEN": TOKEN,
            }
            agent: AgentHandle = await asyncio.to_thread(start_agent, tmp_path, env=env)
            try:
                await poll(lambda: hub.bus.store_online(STORE))
                await _story(hub, agent, sim)
            finally:
                await asyncio.to_thread(agent.stop)


async def _story(hub: InprocHub, agent: AgentHandle, sim: SimHandle) -> None:
    service = hub.orders
    first = await new_order(service, 1)
    second = await new_order(service, 2)
    await poll(lambda: agent.journal.order_status(second.id) == "pending")
    await poll(lambda: agent.journal.order_status(first.id) == "pending")

    async def acked() -> bool:
        d = await get_delivery(hub.db, STORE, first.id)
        return d is not None and d.outcome == "acked" and d.acked_at is not None

    await poll(acked)

    # The platform cancels the first order: the store cancels it; its code stops working.
    await cancel_order(service, first)
    await poll(lambda: agent.journal.order_status(first.id) == "cancelled")

    async def cancel_acked() -> bool:
        d = await get_delivery(hub.db, STORE, first.id)
        return d is not None and d.cmd == "orders.cancel" and d.outcome == "acked"

    await poll(cancel_acked)

    # The courier of the second order gets a pass from the hub and scans it at the door.
    status, body = await hub.get(f"/api/v1/stores/{STORE}/orders/{second.id}/pickup-pass")
    assert status == 200, body
    before = await asyncio.to_thread(unlocks, sim)
    seq = agent.journal.last_seq()
    await asyncio.to_thread(sim.post, "/scanners/scanner-front/scan", {"code": body["pass"]})
    granted = await asyncio.to_thread(agent.wait_event, "access.granted", after_seq=seq)
    assert reason(granted) == "granted"
    assert granted["data"]["orders"] == [second.id]
    await asyncio.to_thread(wait_until, lambda: unlocks(sim) == before + 1, 3, "the door to open")
    await poll(lambda: agent.journal.order_status(second.id) == "picked_up")
    assert agent.journal.order_status(first.id) == "cancelled"

    # The pickup comes back to the hub through the relay, and the order service hears of
    # it once, from this store, and owes the platform its "picking done" call.
    async def picked_up() -> bool:
        order = await service.get(STORE, second.id)
        return order is not None and order.status == "picked_up"

    await poll(picked_up, within=10)
    order = await service.get(STORE, second.id)
    assert order is not None and order.courier == "courier:meituan"
    log = await service.order_log(second.id)
    from_store = [(e["from_status"], e["to_status"]) for e in log if e["source"] != "test"]
    assert [e for e in log if e["source"] == f"store:{STORE}"] != []
    assert from_store[0] == ("pending", "picked_up")
    assert sum(1 for e in log if e["source"] == f"store:{STORE}") == 1
    calls = await service.platform_calls(second.id)
    assert [c["kind"] for c in calls] == ["picking_done"]
