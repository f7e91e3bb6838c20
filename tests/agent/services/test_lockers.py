"""Locker compartments opened by the in-process agent on the simulator's lock bus (a real
pty): locker.open, paid orders, failures, restarts. What happened is read back from the
agent's real journal and the simulated board's own counters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.app import Agent
from agent.clock import Clock
from agent.config import load_config
from agent.journal import Journal, PutSetting
from agent.journal.view import JournalView
from agent.remote.errors import BAD_ARGS, FAILED, CommandError
from agent.runtime.systemd import Notifier
from agent.services.orders import PendingOrders
from tests.support.agent import make_keys
from tests.support.pty_devices import eventually
from tests.support.sim import SimHandle, start_sim

COLA, TEA, CHIPS = "6901028075022", "6923450657713", "6920202888883"
BUS = "/lockbus/lockbus-1"


def locker_config(tmp: Path, sim: SimHandle, **locker: Any) -> Path:
    make_keys(tmp)
    cfg = {
        "store": {"id": "demo-001"},
        "storage": {"dir": "agent"},
        "access": {"keys": [{"kid": "demo", "pem_file": "keys/hub-signing.pub.pem"}]},
        "hub": {"url": "http://127.0.0.1:9"},
        "mqtt": {"url": "mqtt://127.0.0.1:9", "enabled": False},
        "devices": [
            {
                "id": "lockbus-1",
                "kind": "lockbus",
                "port": str(sim.link("lockbus-1")),
                "boards": [1, 2],
                "poll_ms": 50,
            }
        ],
        "doors": [
            {
                "id": "front",
                "lock": {"type": "lockboard", "device": "lockbus-1", "board": 1, "channel": 1},
                "contact": {"type": "lock_feedback"},
            }
        ],
        "lockers": [
            {
                "id": "locker-1",
                "device": "lockbus-1",
                "board": 2,
                "slots": 12,
                "open_timeout_seconds": 1,
                "contents": [
                    {"slot": 1, "barcode": COLA},
                    {"slot": 2, "barcode": COLA},
                    {"slot": 3, "barcode": COLA, "stock": 2},
                    {"slot": 4, "barcode": TEA},
                    {"slot": 5, "barcode": CHIPS, "stock": 0},
                ],
            }
            | locker
        ],
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimHandle]:
    handle = start_sim(tmp_path)
    yield handle
    handle.stop()


class Store:
    """The running agent plus what a test reads back."""

    def __init__(self, agent: Agent, sim: SimHandle) -> None:
        self.agent = agent
        self.sim = sim
        self.view = JournalView(agent.cfg.storage.dir / "journal.db")

    async def command(self, name: str, **args: Any) -> dict[str, Any]:
        return await self.agent.local_command(name, args, "staff-1")

    def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        return self.view.events(type_)

    def data(self, type_: str) -> list[dict[str, Any]]:
        return [e["data"] for e in self.events(type_)]

    async def channel(self, slot: int) -> dict[str, Any]:
        state = await asyncio.to_thread(self.sim.get, BUS)
        return state["boards"]["2"][str(slot)]

    async def sim_post(self, path: str, body: dict[str, Any]) -> Any:
        return await asyncio.to_thread(self.sim.post, BUS + path, body)

    def slot_state(self, slot: int) -> dict[str, Any]:
        return self.agent.state()["lockers"]["locker-1"]["slots"][str(slot)]

    async def upsert(self, *orders: dict[str, Any]) -> None:
        await self.agent.store.orders.upsert(orders)
        await settle(self.agent)


async def settle(agent: Agent) -> None:
    """Wait for the work that upserts and feedback spawned (opens, journal writes)."""
    for _ in range(3):
        while agent._inflight:
            await asyncio.gather(*list(agent._inflight), return_exceptions=True)
        await asyncio.sleep(0.05)


async def started(config: Path) -> Agent:
    agent = Agent(config, load_config(config), Notifier(None))
    await agent.start()
    lockers = agent.store.services[0]
    await eventually(
        lambda: all(c.read.is_set() for c in lockers._cabinets["locker-1"].slots.values())
    )
    return agent


@pytest.fixture
async def store(tmp_path: Path, sim: SimHandle) -> AsyncIterator[Store]:
    agent = await started(locker_config(tmp_path, sim))
    try:
        yield Store(agent, sim)
    finally:
        await agent.stop()


def paid(oid: str, slot: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": oid,
        "platform": "local",
        "status": "pending",
        "items": [{"barcode": COLA, "name": "可口可乐 500ml", "qty": 1, "price": 3.5}],
        "paid": True,
        "payment": {"id": f"pay-{oid}", "method": "wechat"},
        "dispense": {"device": "locker-1", "slot": slot},
    } | extra


async def test_locker_open_pops_the_compartment_and_counts_it_out(store: Store):
    result = await store.command("locker.open", locker="locker-1", slot=3)
    assert result == {
        "locker": "locker-1",
        "slot": 3,
        "opened": True,
        "barcode": COLA,
        "order": None,
    }
    ch = await store.channel(3)
    assert ch["unlock_count"] == 1 and ch["locked"] is False
    assert (await store.channel(2))["unlock_count"] == 0
    [opened] = store.events("locker.opened")
    [moved] = store.events("stock.changed")
    assert opened["data"] == {
        "locker": "locker-1",
        "slot": 3,
        "barcode": COLA,
        "order": None,
        "by": "staff-1",
    }
    assert moved["seq"] == opened["seq"] + 1  # one transaction
    assert moved["data"] | {"source": "x"} == {
        "barcode": COLA,
        "delta": -1,
        "reason": "locker",
        "qty_after": -1,  # the store never counted cola before
        "source": "x",
        "locker": "locker-1",
        "slot": 3,
    }
    assert store.slot_state(3) == {"door": "open", "barcode": COLA, "stock": 1}
    assert store.data("sale.completed") == [] and store.data("pickup.completed") == []

    # The customer shuts it again.
    await store.sim_post("/boards/2/channels/3/contact", {"open": False})
    await eventually(lambda: store.data("locker.closed"))
    await settle(store.agent)
    assert store.data("locker.closed") == [{"locker": "locker-1", "slot": 3}]
    assert store.slot_state(3)["door"] == "closed"


async def test_an_empty_compartment_opens_but_nothing_is_counted(store: Store):
    result = await store.command("locker.open", locker="locker-1", slot=5)
    assert result["opened"] is True and result["barcode"] is None
    assert store.data("locker.opened")[0]["barcode"] is None
    assert store.events("stock.changed") == []


async def test_a_stuck_compartment_fails_and_charges_nothing(store: Store):
    await store.sim_post("/boards/2/channels/4/fault", {"stuck": True})
    with pytest.raises(CommandError) as err:
        await store.command("locker.open", locker="locker-1", slot=4)
    assert err.value.code == FAILED and err.value.detail["reason"] == "no_feedback"
    assert "compartment 4" in err.value.message
    assert (await store.channel(4))["unlock_count"] == 1  # the board did get OPEN
    assert store.data("locker.failed") == [
        {"locker": "locker-1", "slot": 4, "order": None, "reason": "no_feedback"}
    ]
    assert store.events("locker.opened") == [] and store.events("stock.changed") == []
    assert store.slot_state(4) == {"door": "closed", "barcode": TEA, "stock": 1}


async def test_a_silent_board_fails_the_opening(store: Store):
    await store.sim_post("/boards/2/mute", {"on": True})
    with pytest.raises(CommandError) as err:
        await store.command("locker.open", locker="locker-1", slot=1)
    assert err.value.detail["reason"] == "no_answer"
    assert store.data("locker.failed")[0]["reason"] == "no_answer"
    assert store.events("stock.changed") == []


async def test_an_open_compartment_is_not_opened_again(store: Store):
    await store.sim_post("/boards/2/channels/2/contact", {"open": True})
    await eventually(lambda: store.slot_state(2)["door"] == "open")
    with pytest.raises(CommandError) as err:
        await store.command("locker.open", locker="locker-1", slot=2)
    assert err.value.detail["reason"] == "already_open"
    assert (await store.channel(2))["unlock_count"] == 0
    await settle(store.agent)
    # Opened with nobody asking: reported, not counted.
    assert store.data("locker.forced") == [{"locker": "locker-1", "slot": 2}]
    assert store.events("stock.changed") == []


async def test_bad_arguments_name_what_exists(store: Store):
    with pytest.raises(CommandError) as err:
        await store.command("locker.open", locker="locker-9", slot=1)
    assert err.value.code == BAD_ARGS and "locker-1" in err.value.message
    with pytest.raises(CommandError) as err:
        await store.command("locker.open", locker="locker-1", slot=13)
    assert err.value.code == BAD_ARGS and "1-12" in err.value.message
    assert store.events("locker.failed") == []


async def test_a_paid_order_opens_its_compartment_once(store: Store):
    order = paid("o-1", 1)
    await store.upsert(order)
    await store.upsert(order)  # the hub sends it again
    assert (await store.channel(1))["unlock_count"] == 1
    types = [e["type"] for e in store.events() if e["type"] != "device.online"]
    assert types[-4:] == ["locker.opened", "sale.completed", "pickup.completed", "stock.changed"]
    [opened] = store.data("locker.opened")
    assert opened == {
        "locker": "locker-1",
        "slot": 1,
        "barcode": COLA,
        "order": "o-1",
        "by": "order",
    }
    [sale] = store.data("sale.completed")
    assert sale["channel"] == "locker" and sale["order"] == "o-1"
    assert sale["items"] == [{"barcode": COLA, "name": "可口可乐 500ml", "qty": 1, "price": 3.5}]
    assert sale["total"] == 3.5 and sale["payment"] == {"id": "pay-o-1", "method": "wechat"}
    [pickup] = store.data("pickup.completed")
    assert pickup["order"] == "o-1" and pickup["channel"] == "locker" and pickup["courier"] is None
    assert store.view.order_status("o-1") == "picked_up"
    assert store.agent.store.orders.by_id["o-1"]["status"] == "picked_up"
    # Two upserts at once (before the first has opened anything) still open it once.
    await asyncio.gather(
        store.agent.store.orders.upsert([paid("o-2", 2)]),
        store.agent.store.orders.upsert([paid("o-2", 2)]),
    )
    await settle(store.agent)
    assert (await store.channel(2))["unlock_count"] == 1
    assert [d["order"] for d in store.data("locker.opened")] == ["o-1", "o-2"]


async def test_a_paid_order_that_fails_stays_pending_and_is_not_retried_by_itself(store: Store):
    await store.sim_post("/boards/2/channels/4/fault", {"stuck": True})
    await store.upsert(paid("o-3", 4))
    assert store.data("locker.failed") == [
        {"locker": "locker-1", "slot": 4, "order": "o-3", "reason": "no_feedback"}
    ]
    assert store.view.order_status("o-3") == "pending"
    assert store.events("stock.changed") == [] and store.events("sale.completed") == []
    await store.upsert(paid("o-3", 4))
    assert (await store.channel(4))["unlock_count"] == 1

    # Staff free the door and open it for the order on purpose.
    await store.sim_post("/boards/2/channels/4/fault", {"stuck": False})
    result = await store.command("locker.open", locker="locker-1", slot=4, order="o-3")
    assert result["order"] == "o-3" and result["barcode"] == TEA
    assert store.view.order_status("o-3") == "picked_up"
    assert [d["order"] for d in store.data("sale.completed")] == ["o-3"]
    with pytest.raises(CommandError) as err:  # picked up now: not again
        await store.command("locker.open", locker="locker-1", slot=4, order="o-3")
    assert err.value.code == BAD_ARGS and "picked_up" in err.value.message


async def test_a_paid_order_for_an_empty_compartment_is_not_opened(store: Store):
    await store.upsert(paid("o-4", 5))
    assert store.data("locker.failed")[0]["reason"] == "empty"
    assert (await store.channel(5))["unlock_count"] == 0
    assert store.view.order_status("o-4") == "pending"


async def test_restock_sets_the_count_and_moves_stock(store: Store):
    result = await store.command("locker.restock", locker="locker-1", slot=5, stock=3)
    assert result == {"locker": "locker-1", "slot": 5, "barcode": CHIPS, "stock": 3}
    [moved] = store.data("stock.changed")
    assert (moved["barcode"], moved["delta"], moved["reason"]) == (CHIPS, 3, "restock")
    assert store.slot_state(5)["stock"] == 3
    await store.upsert(paid("o-5", 5))
    assert store.slot_state(5)["stock"] == 2


async def test_counts_and_a_tried_order_survive_a_restart(tmp_path: Path, sim: SimHandle):
    config = locker_config(tmp_path, sim)
    agent = await started(config)
    try:
        await agent.local_command("locker.open", {"locker": "locker-1", "slot": 3}, "staff")
        await asyncio.to_thread(sim.post, BUS + "/boards/2/channels/4/fault", {"stuck": True})
        await agent.store.orders.upsert([paid("o-6", 4)])
        await settle(agent)
    finally:
        await agent.stop()
    agent = await started(config)
    try:
        store = Store(agent, sim)
        assert store.slot_state(3)["stock"] == 1  # 2 configured, 1 taken before
        await store.upsert(paid("o-6", 4))
        assert (await store.channel(4))["unlock_count"] == 1  # not tried a second time
    finally:
        await agent.stop()


async def seed(run_dir: Path, orders: list[dict[str, Any]], marks: dict[str, Any]) -> None:
    """What a journal holds after the agent died mid-open (orders + the locker's marks)."""
    storage = run_dir / "agent"
    storage.mkdir(parents=True, exist_ok=True)
    journal = await Journal.open(storage / "journal.db", "demo-001", Clock())
    try:
        await PendingOrders(journal, {}, code_length=6).upsert(orders)
        await journal.apply([PutSetting("locker/locker-1", {"slots": {}, "orders": marks})])
    finally:
        await journal.close()


async def test_an_opening_cut_off_by_a_crash_is_reported_not_repeated(
    tmp_path: Path, sim: SimHandle
):
    config = locker_config(tmp_path, sim)
    await seed(
        tmp_path,
        [paid("o-7", 1), paid("o-8", 2)],  # o-7 was mid-open; o-8 never tried
        {"o-7": {"slot": 1, "state": "opening"}},
    )
    agent = await started(config)
    try:
        store = Store(agent, sim)
        await eventually(lambda: store.data("locker.opened"))
        await settle(agent)
        assert store.data("locker.failed") == [
            {"locker": "locker-1", "slot": 1, "order": "o-7", "reason": "interrupted"}
        ]
        assert (await store.channel(1))["unlock_count"] == 0
        assert store.view.order_status("o-7") == "pending"
        assert [d["order"] for d in store.data("locker.opened")] == ["o-8"]
        assert (await store.channel(2))["unlock_count"] == 1
    finally:
        await agent.stop()
