"""Orders that arrive together go to their store in one signed command, and an order the
store refuses does not hold back the others. The real hub application (order service,
delivery, bus) in this process, a real mosquitto, and a store's real RemoteOps with its
journal and PendingOrders."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent.clock import Clock
from agent.journal import Journal
from agent.model.commands import BAD_ARGS, Caller, CommandError
from agent.mqtt import RemoteOps
from agent.services.orders import PendingOrders
from cloud.command_batches import MAX_PER_COMMAND
from cloud.db.deliveries import get_delivery
from tests.agent.mqtt.harness import Keys, make_config
from tests.cloud.delivery.inproc import STORE, InprocHub, inproc_hub, new_order, poll
from tests.support.broker import BrokerHandle


@dataclass
class Store:
    orders: PendingOrders
    refuse: set[str] = field(default_factory=set)  # order ids this store cannot take
    commands: list[tuple[str, list[str]]] = field(default_factory=list)  # (cmd, order ids)

    async def handle(self, cmd: str, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        if cmd != "orders.upsert":
            return {}
        ids = [o["id"] for o in args["orders"]]
        self.commands.append((cmd, ids))
        bad = self.refuse.intersection(ids)
        if bad:  # as the agent refuses a command with one order it cannot read
            raise CommandError(BAD_ARGS, f"order {sorted(bad)[0]}: items must be a list")
        return {"upserted": await self.orders.upsert(args["orders"])}


@pytest.fixture
async def hub(tmp_path: Path, broker: BrokerHandle, keys: Keys) -> AsyncIterator[InprocHub]:
    async with inproc_hub(tmp_path, broker.url, kid=keys.kid) as h:
        yield h


@contextlib.asynccontextmanager
async def online_store(
    tmp_path: Path, broker: BrokerHandle, keys: Keys, hub: InprocHub
) -> AsyncIterator[Store]:
    clock = Clock()
    journal = await Journal.open(tmp_path / "agent" / "journal.db", STORE, clock)
    store = Store(PendingOrders(journal, {}, code_length=6))
    ops = RemoteOps(
        make_config(tmp_path, broker.url),
        journal=journal,
        verifier=keys.verifier(),
        clock=clock,
        handle=store.handle,
        state=dict,
        status_extra={"store": STORE},
    )
    await ops.start()
    try:
        await poll(lambda: hub.bus.store_online(STORE) is True)
        yield store
    finally:
        await ops.stop()
        await journal.close()


async def deliveries(hub: InprocHub, ids: list[str]) -> list[Any]:
    return [await get_delivery(hub.db, STORE, i) for i in ids]


async def all_settled(hub: InprocHub, ids: list[str]) -> list[Any] | None:
    found = await deliveries(hub, ids)
    done = all(d is not None and d.outcome in ("acked", "refused") for d in found)
    return found if done else None


async def test_orders_arriving_together_reach_the_store_in_one_command(
    tmp_path: Path, broker: BrokerHandle, keys: Keys, hub: InprocHub
) -> None:
    async with online_store(tmp_path, broker, keys, hub) as store:
        made = await asyncio.gather(*(new_order(hub.orders, n) for n in range(1, 121)))
        ids = [o.id for o in made]
        found = await poll(lambda: all_settled(hub, ids), within=10)

    assert all(d.outcome == "acked" for d in found)
    # Each order is held by the store with the code the hub gave it...
    assert {o.id: o.pickup_code for o in made} == {
        i: store.orders.by_id[i]["pickup_code"] for i in ids
    }
    # ...and 120 orders made three signed commands of at most 50 (one more if the loop
    # split them), each delivery record naming the command that carried it.
    assert max(len(batch) for _, batch in store.commands) == MAX_PER_COMMAND
    assert len(store.commands) <= 4, [len(b) for _, b in store.commands]
    assert sorted(i for _, batch in store.commands for i in batch) == sorted(ids)
    assert len({d.jti for d in found}) == len(store.commands)


async def test_an_order_the_store_refuses_does_not_hold_back_the_others(
    tmp_path: Path, broker: BrokerHandle, keys: Keys, hub: InprocHub
) -> None:
    async with online_store(tmp_path, broker, keys, hub) as store:
        store.refuse.add("meituan-27003")
        made = await asyncio.gather(*(new_order(hub.orders, n) for n in range(1, 6)))
        ids = [o.id for o in made]
        found = await poll(lambda: all_settled(hub, ids))

    outcomes = {d.order_id: d.outcome for d in found}
    assert outcomes == {i: "refused" if i == "meituan-27003" else "acked" for i in ids}
    refused = next(d for d in found if d.order_id == "meituan-27003")
    assert "items must be a list" in (refused.error or "")
    assert sorted(store.orders.by_id) == sorted(i for i in ids if i != "meituan-27003")
    # The batch was refused whole, then every order of it was sent on its own.
    assert len(store.commands[0][1]) == 5
    assert sorted(tuple(b) for _, b in store.commands[1:]) == sorted((i,) for i in ids)
