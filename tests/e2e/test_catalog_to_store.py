"""The owner's catalog reaches the store: a product upserted at the hub (process) is sent
signed as `catalog.upsert` over mosquitto to the agent (process), which keeps it in its
journal; a price change follows. What the store holds is what self-checkout and pick
slips use while the store is offline."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.agent import Keys, start_agent
from tests.support.broker import start_broker
from tests.support.hub import start_hub
from tests.support.sim import SimHandle, wait_until

COLA = "6901028075022"


async def test_a_product_set_at_the_hub_reaches_the_store(
    sim: SimHandle, keys: Keys, run_dir: Path
) -> None:
    broker = start_broker(run_dir)
    hub = await asyncio.to_thread(start_hub, run_dir, env={"SHOPGATE_MQTT_URL": broker.url})
    agent = None
    try:
        agent_env = {**hub.agent_env, "SHOPGATE_MQTT_URL": broker.url}
        agent = await asyncio.to_thread(start_agent, run_dir, env=agent_env)
        journal = agent.journal
        for price, shelf in ((3.5, "A3"), (4.0, "B1")):
            product = {"barcode": COLA, "name": "可口可乐 330ml", "price": price, "shelf": shelf}
            status, body = await asyncio.to_thread(
                hub.request, "POST", "/api/v1/stores/demo-001/catalog", {"products": [product]}
            )
            assert status == 200, body

            def arrived(price: float = price, shelf: str = shelf) -> bool:
                held = journal.product(COLA)
                return held is not None and (held["price"], held["shelf"]) == (price, shelf)

            await asyncio.to_thread(wait_until, arrived, 15, f"the price {price} at the store")
        assert journal.product(COLA)["name"] == "可口可乐 330ml"
    finally:
        if agent is not None:
            await asyncio.to_thread(agent.stop)
        await asyncio.to_thread(hub.stop)
        broker.stop()
