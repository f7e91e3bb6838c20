"""An OPEN the lock board never answers, through the in-process agent on the simulator's
lock bus (a real pty): the board may have opened, so nothing is given back as if it had
not. What happened is read back from the agent's journal and the board's counters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.agent import make_keys
from tests.support.inproc_agent import InprocAgent, write_agent_config
from tests.support.pty_devices import eventually
from tests.support.sim import SimHandle

BUS = "/lockbus/lockbus-1"
ORDER = {
    "id": "mt-2001",
    "platform": "meituan",
    "pickup_code": "246810",
    "status": "pending",
    "items": [{"barcode": "6901028075022", "name": "可口可乐 500ml", "qty": 1, "shelf": "A3"}],
}


@pytest.fixture
async def store(tmp_path: Path, sim: SimHandle) -> AsyncIterator[InprocAgent]:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["devices"][0] |= {"poll_ms": 50, "timeout_ms": 60, "retries": 1}
        cfg["devices"].append({"id": "gpio", "kind": "gpio", "pin_factory": "mock"})
        # The door's contact on a GPIO pin, so it still reports with the board silent.
        cfg["doors"][0]["contact"] = {"type": "gpio", "device": "gpio", "pin": 27}

    config = write_agent_config(tmp_path, sim, edit)
    running = await InprocAgent.start(
        config, sim, ready=lambda a: a.device_online.get("lockbus-1") is True
    )
    running.agent.store.devices["gpio"].pin_factory.pin(27).drive_high()  # shut
    try:
        yield running
    finally:
        await running.stop()


async def unlocks(store: InprocAgent) -> int:
    return (await store.sim_get(BUS))["boards"]["1"]["1"]["unlock_count"]


async def board_back(store: InprocAgent) -> None:
    await store.sim_post(BUS + "/boards/1/mute", {"on": False})
    await eventually(lambda: store.agent.device_online.get("lockbus-1") is True, within=5)


async def test_a_pickup_whose_open_got_no_answer_stays_pending_for_the_courier(
    store: InprocAgent,
) -> None:
    access = store.agent.store.access
    await store.upsert(ORDER)
    await store.sim_post(BUS + "/boards/1/mute", {"on": True})
    decision = await access.on_scan("front", ORDER["pickup_code"])
    assert decision.granted and "may have opened" in decision.detail
    [uncertain] = store.data("access.uncertain")
    assert uncertain["reason"] == "no_reply" and uncertain["method"] == "code"
    assert uncertain["orders_pending"] == [ORDER["id"]] and uncertain["pass_used"] is False
    # Not completed: the platform is not told "picked up" for goods maybe still on the shelf.
    assert store.events("pickup.completed") == []
    assert store.agent.store.orders.by_id[ORDER["id"]]["status"] == "pending"
    assert store.view.order_status(ORDER["id"]) == "pending"
    await board_back(store)
    assert (await access.on_scan("front", ORDER["pickup_code"])).granted
    await store.settle()
    assert store.data("pickup.completed")[0]["order"] == ORDER["id"]
    assert await unlocks(store) == 1


async def test_an_entry_pass_whose_open_got_no_answer_stays_used(
    store: InprocAgent, tmp_path: Path
) -> None:
    access = store.agent.store.access
    pass_ = make_keys(tmp_path).mint(scope="entry", sub="kim", door=None)
    await store.sim_post(BUS + "/boards/1/mute", {"on": True})
    assert (await access.on_scan("front", pass_)).granted
    [uncertain] = store.data("access.uncertain")
    assert uncertain["pass_used"] is True and uncertain["sub"] == "kim"
    assert store.events("door.unlock_failed") == []
    await board_back(store)
    assert str((await access.on_scan("front", pass_)).reason) == "replayed"
    assert await unlocks(store) == 0


async def test_the_door_opening_after_an_unanswered_open_is_no_forced_door(
    store: InprocAgent, tmp_path: Path
) -> None:
    """The reply was lost but the strike did release: the person opens the door. That is
    the grant's opening, not a break-in."""
    pass_ = make_keys(tmp_path).mint(scope="entry", sub="lin", door=None)
    await store.sim_post(BUS + "/boards/1/mute", {"on": True})
    await store.agent.store.access.on_scan("front", pass_)
    store.agent.store.devices["gpio"].pin_factory.pin(27).drive_low()  # opens
    await eventually(lambda: bool(store.events("door.opened")))
    assert store.data("door.opened")[0]["by"] == "grant"
    assert store.events("door.forced") == []
