"""The real hub process (`shopgate-hub run` with the demo hub.yaml) takes an order from
each of the four fake platforms, confirms each with a signed call back, and serves them
to the store; a restarted hub still knows them."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from tests.support.hub import start_hub
from tests.support.platforms import PLATFORMS, FakeOrder, FakePlatform

_ids = itertools.count(6_100_000_000_000_000_000)


@pytest.fixture
async def fakes() -> AsyncIterator[dict[str, FakePlatform]]:
    async with AsyncExitStack() as stack:
        yield {
            name: await stack.enter_async_context(FakePlatform(name, token=f"{name}-token"))
            for name in PLATFORMS
        }


async def test_the_hub_takes_confirms_and_serves_every_platforms_orders(
    tmp_path: Path, fakes: dict[str, FakePlatform]
) -> None:
    env = {}
    for name, fake in fakes.items():
        env[f"SHOPGATE_{name.upper()}_URL"] = fake.url
        env[f"SHOPGATE_{name.upper()}_TOKEN"] = fake.token
    hub = await asyncio.to_thread(start_hub, tmp_path, env=env)
    try:
        orders = {name: FakeOrder(str(next(_ids))) for name in PLATFORMS}
        for name, fake in fakes.items():
            status, body = await fake.push_order(hub.url, orders[name])
            assert status == 200, (name, body, hub.log()[-2000:])
        for fake in fakes.values():
            call = await fake.wait_for_call("confirm_order", within_s=10)
            assert call.signature_ok, call
        status, body = await asyncio.to_thread(
            hub.request, "GET", "/api/v1/stores/demo-001/orders?status=pending"
        )
        assert status == 200, body
        served = {o["id"]: o for o in body["orders"]}
        assert set(served) == {f"{n}-{o.order_id}" for n, o in orders.items()}
        codes = [o["pickup_code"] for o in served.values()]
        assert len(set(codes)) == 4 and all(len(c) == 6 and c.isdigit() for c in codes)
        # A bad signature never reaches the orders, and the refusal is on record.
        status, body = await fakes["meituan"].push_order(
            hub.url, FakeOrder(str(next(_ids))), secret="wrong"
        )
        assert status == 401, body
        log = hub.log()
        assert "demo-secret" not in log and "-token" not in log.replace("demo-token", "")
    finally:
        assert await asyncio.to_thread(hub.stop) == 0
    again = await asyncio.to_thread(start_hub, tmp_path, env=env, token=hub.token)
    try:
        status, body = await asyncio.to_thread(
            again.request, "GET", "/api/v1/stores/demo-001/orders"
        )
        assert status == 200 and len(body["orders"]) == 4, body
        # Nothing was left owed: each platform was confirmed exactly once.
        await asyncio.sleep(0.3)
        assert [len(f.calls_of("confirm_order")) for f in fakes.values()] == [1, 1, 1, 1]
    finally:
        assert await asyncio.to_thread(again.stop) == 0
