"""Locker compartments opened by the in-process agent on the simulator's lock bus (a real
pty): locker.open, paid orders, failures, restarts. What happened is read back from the
agent's real journal and the simulated board's own counters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.journal import PutSetting
from agent.model.commands import BAD_ARGS, FAILED, CommandError
from tests.support.inproc_agent import InprocAgent, paid_order, seed_journal, write_agent_config
from tests.support.pty_devices import eventually
from tests.support.sim import SimHandle

COLA, TEA, CHIPS = "6901028075022", "6923450657713", "6920202888883"
BUS = "/lockbus/lockbus-1"


def locker_config(tmp: Path, sim: SimHandle, **locker: Any) -> Path:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["devices"][0] |= {"boards": [1, 2], "poll_ms": 50}
        cfg["lockers"] = [
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
        ]

    return write_agent_config(tmp, sim, edit)


class Store(InprocAgent):
    """The running agent plus the locker's board and slots as a test reads them."""

    async def channel(self, slot: int) -> dict[str, Any]:
        state = await self.sim_get(BUS)
        return state["boards"]["2"][str(slot)]

    def slot_state(self, slot: int) -> dict[str, Any]:
        return self.agent.state()["lockers"]["locker-1"]["slots"][str(slot)]


def all_slots_read(agent: Any) -> bool:
    lockers = agent.store.services[0]
    return all(c.read.is_set() for c in lockers._cabinets["locker-1"].slots.values())


async def started(config: Path, sim: SimHandle) -> Store:
    return await Store.start(config, sim, ready=all_slots_read, within=3)


@pytest.fixture
async def store(tmp_path: Path, sim: SimHandle) -> AsyncIterator[Store]:
    s = await started(locker_config(tmp_path, sim), sim)
    try:
        yield s
    finally:
        await s.stop()


def paid(oid: str, slot: int, **extra: Any) -> dict[str, Any]:
    return paid_order(oid, "locker-1", slot, **extra)


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
        "qty_after": None,  # the store never counted cola: no made-up count
        "source": "x",
        "locker": "locker-1",
        "slot": 3,
    }
    assert store.slot_state(3) == {"door": "open", "barcode": COLA, "stock": 1}
    assert store.data("sale.completed") == [] and store.data("pickup.completed") == []

    # The customer shuts it again.
    await store.sim_post(BUS + "/boards/2/channels/3/contact", {"open": False})
    await eventually(lambda: store.data("locker.closed"))
    await store.settle()
    assert store.data("locker.closed") == [{"locker": "locker-1", "slot": 3}]
    assert store.slot_state(3)["door"] == "closed"


async def test_an_empty_compartment_opens_but_nothing_is_counted(store: Store):
    result = await store.command("locker.open", locker="locker-1", slot=5)
    assert result["opened"] is True and result["barcode"] is None
    assert store.data("locker.opened")[0]["barcode"] is None
    assert store.events("stock.changed") == []


async def test_a_stuck_compartment_fails_and_charges_nothing(store: Store):
    await store.sim_post(BUS + "/boards/2/channels/4/fault", {"stuck": True})
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
    await store.sim_post(BUS + "/boards/2/mute", {"on": True})
    with pytest.raises(CommandError) as err:
        await store.command("locker.open", locker="locker-1", slot=1)
    assert err.value.detail["reason"] == "no_answer"
    assert store.data("locker.failed")[0]["reason"] == "no_answer"
    assert store.events("stock.changed") == []


async def test_an_open_compartment_is_not_opened_again(store: Store):
    await store.sim_post(BUS + "/boards/2/channels/2/contact", {"open": True})
    await eventually(lambda: store.slot_state(2)["door"] == "open")
    with pytest.raises(CommandError) as err:
        await store.command("locker.open", locker="locker-1", slot=2)
    assert err.value.detail["reason"] == "already_open"
    assert (await store.channel(2))["unlock_count"] == 0
    await store.settle()
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
    await store.settle()
    assert (await store.channel(2))["unlock_count"] == 1
    assert [d["order"] for d in store.data("locker.opened")] == ["o-1", "o-2"]


async def test_a_paid_order_that_fails_stays_pending_and_is_not_retried_by_itself(store: Store):
    await store.sim_post(BUS + "/boards/2/channels/4/fault", {"stuck": True})
    await store.upsert(paid("o-3", 4))
    assert store.data("locker.failed") == [
        {"locker": "locker-1", "slot": 4, "order": "o-3", "reason": "no_feedback"}
    ]
    assert store.view.order_status("o-3") == "pending"
    assert store.events("stock.changed") == [] and store.events("sale.completed") == []
    await store.upsert(paid("o-3", 4))
    assert (await store.channel(4))["unlock_count"] == 1

    # Staff free the door and open it for the order on purpose.
    await store.sim_post(BUS + "/boards/2/channels/4/fault", {"stuck": False})
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
    store = await started(config, sim)
    try:
        await store.command("locker.open", by="staff", locker="locker-1", slot=3)
        await store.sim_post(BUS + "/boards/2/channels/4/fault", {"stuck": True})
        await store.upsert(paid("o-6", 4))
    finally:
        await store.stop()
    store = await started(config, sim)
    try:
        assert store.slot_state(3)["stock"] == 1  # 2 configured, 1 taken before
        await store.upsert(paid("o-6", 4))
        assert (await store.channel(4))["unlock_count"] == 1  # not tried a second time
    finally:
        await store.stop()


async def test_an_opening_cut_off_by_a_crash_is_reported_not_repeated(
    tmp_path: Path, sim: SimHandle
):
    config = locker_config(tmp_path, sim)
    # What a journal holds after the agent died mid-open (orders + the locker's marks).
    await seed_journal(
        tmp_path,
        orders=[paid("o-7", 1), paid("o-8", 2)],  # o-7 was mid-open; o-8 never tried
        ops=[
            PutSetting(
                "locker/locker-1", {"slots": {}, "orders": {"o-7": {"slot": 1, "state": "opening"}}}
            )
        ],
    )
    store = await started(config, sim)
    try:
        await eventually(lambda: store.data("locker.opened"))
        await store.settle()
        assert store.data("locker.failed") == [
            {"locker": "locker-1", "slot": 1, "order": "o-7", "reason": "interrupted"}
        ]
        assert (await store.channel(1))["unlock_count"] == 0
        assert store.view.order_status("o-7") == "pending"
        assert [d["order"] for d in store.data("locker.opened")] == ["o-8"]
        assert (await store.channel(2))["unlock_count"] == 1
    finally:
        await store.stop()
