"""Vends by the in-process agent on the simulator's VMC (a real pty at 57600): the vend
command, paid orders (once, also across restarts), faults and refunds, price pushes.
What happened is read back from the agent's real journal and the simulated machine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.journal import PutSetting
from agent.model.commands import BAD_ARGS, CommandError
from agent.services import vending as vending_service
from tests.support.inproc_agent import InprocAgent, paid_order, seed_journal, write_agent_config
from tests.support.pty_devices import eventually
from tests.support.sim import SimHandle

COLA, GUM = "6901028075022", "6923450657713"
MACHINE = "/vending/vending-1"


def vending_config(tmp: Path, sim: SimHandle) -> Path:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["devices"].append(
            {
                "id": "vending-1",
                "kind": "vending",
                "port": str(sim.link("vending-1")),
                "vend_timeout_s": 5,
                "slots": [
                    {"slot": 1, "barcode": COLA, "price": 3.5, "stock": 6},
                    {"slot": 4, "barcode": GUM, "price": 2.0},
                ],
            }
        )

    return write_agent_config(tmp, sim, edit)


@pytest.fixture(autouse=True)
def quick_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prices and counts are re-checked every SYNC_S (1 s): the same loop, sooner, so the
    # tests that wait for a push wait a fraction of that.
    monkeypatch.setattr(vending_service, "SYNC_S", 0.2)


class Store(InprocAgent):
    async def vend(self, slot: int, **extra: Any) -> dict[str, Any]:
        return await self.command("vend", machine="vending-1", slot=slot, **extra)

    async def machine(self) -> dict[str, Any]:
        return await self.sim_get(MACHINE)


async def started(config: Path, sim: SimHandle) -> Store:
    return await Store.start(
        config, sim, ready=lambda a: a.state()["vending"]["vending-1"]["online"], within=5
    )


@pytest.fixture
async def store(tmp_path: Path, sim: SimHandle) -> AsyncIterator[Store]:
    s = await started(vending_config(tmp_path, sim), sim)
    try:
        yield s
    finally:
        await s.stop()


def paid(oid: str, slot: int = 1, **extra: Any) -> dict[str, Any]:
    return paid_order(oid, "vending-1", slot, **extra)


async def test_vend_sells_one_and_books_it_in_one_transaction(store: Store) -> None:
    # The config's first load (6) reached the machine when it came online.
    await eventually(lambda: store.sim.get(MACHINE)["slots"]["1"]["stock"] == 6, within=5)
    before = 6
    result = await store.vend(1)
    assert result["result"] == "success" and result["machine"] == "vending-1"
    assert (await store.machine())["slots"]["1"]["stock"] == before - 1
    [completed] = store.events("vend.completed")
    [sale] = store.events("sale.completed")
    [moved] = store.events("stock.changed")
    assert [completed["seq"] + 1, completed["seq"] + 2] == [sale["seq"], moved["seq"]]
    assert completed["data"] == {
        "machine": "vending-1",
        "slot": 1,
        "barcode": COLA,
        "price": 3.5,
        "order": None,
        "sale": result["sale"],
    }
    assert sale["data"]["channel"] == "vend" and sale["data"]["total"] == 3.5
    assert sale["data"]["items"] == [{"barcode": COLA, "name": "", "qty": 1, "price": 3.5}]
    assert moved["data"]["delta"] == -1 and moved["data"]["reason"] == "vend"
    assert moved["data"]["qty_after"] is None  # the store never counted cola: no made-up count
    assert store.agent.store.stock.qty(COLA) is None
    assert store.events("vend.started")[0]["seq"] < completed["seq"]


async def test_a_jam_fails_the_vend_asks_for_a_refund_and_moves_no_stock(store: Store) -> None:
    await store.sim_post(f"{MACHINE}/fault", {"slot": 4, "fault": "jam"})
    payment = {"id": "pay-9", "method": "alipay"}
    result = await store.vend(4, payment=payment)
    assert result["result"] == "jammed"
    assert store.data("vend.failed") == [
        {
            "machine": "vending-1",
            "slot": 4,
            "barcode": GUM,
            "fault": "jammed",
            "order": None,
            "refund": {"amount": 2.0, "order": None, "payment": payment},
        }
    ]
    assert store.events("stock.changed") == [] and store.events("sale.completed") == []
    await eventually(lambda: store.agent.state()["vending"]["vending-1"]["fault"] == [4])


async def test_a_paid_order_vends_exactly_once_even_when_upserted_twice(store: Store) -> None:
    vends = len((await store.machine())["vends"])
    await asyncio.gather(store.upsert(paid("o-1")), store.upsert(paid("o-1")))
    await store.upsert(paid("o-1"))
    machine = await store.machine()
    assert len(machine["vends"]) == vends + 1
    assert store.agent.store.orders.by_id["o-1"]["status"] == "picked_up"
    assert store.data("pickup.completed") == [{"order": "o-1", "channel": "vend", "courier": None}]
    [sale] = store.data("sale.completed")
    assert sale["order"] == "o-1" and sale["payment"] == {"id": "pay-o-1", "method": "wechat"}
    assert [e["data"]["source"] for e in store.events("stock.changed")] == ["o-1"]


async def test_a_paid_order_that_jams_stays_pending_and_is_not_retried(store: Store) -> None:
    await store.sim_post(f"{MACHINE}/fault", {"slot": 1, "fault": "jam"})
    await store.upsert(paid("o-2"))
    [failed] = store.data("vend.failed")
    assert failed["order"] == "o-2" and failed["fault"] == "jammed"
    assert failed["refund"] == {
        "amount": 3.5,
        "order": "o-2",
        "payment": {"id": "pay-o-2", "method": "wechat"},
    }
    assert store.agent.store.orders.by_id["o-2"]["status"] == "pending"
    vends = len((await store.machine())["vends"])
    await store.upsert(paid("o-2", note="again"))
    assert len((await store.machine())["vends"]) == vends
    assert store.events("stock.changed") == [] and store.events("pickup.completed") == []


async def test_bad_vend_arguments_are_refused(store: Store) -> None:
    with pytest.raises(CommandError) as slot:
        await store.vend(7)
    assert slot.value.code == BAD_ARGS and "slot 7" in slot.value.message
    with pytest.raises(CommandError) as machine:
        await store.command("vend", machine="nope", slot=1)
    assert machine.value.code == BAD_ARGS
    assert store.events("vend.started") == []


async def test_a_catalogue_price_change_is_pushed_to_the_machine(store: Store) -> None:
    await eventually(lambda: store.sim.get(MACHINE)["slots"]["4"]["price"] == 2.0, within=5)
    product = {"barcode": GUM, "name": "绿箭口香糖", "price": 2.8, "shelf": "C1"}
    await store.remote("catalog.upsert", {"products": [product]})
    await eventually(lambda: store.sim.get(MACHINE)["slots"]["4"]["price"] == 2.8, within=5)
    result = await store.vend(4)
    assert store.data("vend.completed")[0]["price"] == 2.8
    assert result["result"] == "success"


async def test_the_first_stock_load_is_pushed_and_counted_down(store: Store) -> None:
    await eventually(lambda: store.sim.get(MACHINE)["slots"]["1"]["stock"] == 6, within=5)
    await store.vend(1)
    state = await store.agent.journal.load_state()
    assert state.settings["vend/slots/vending-1"] == {"1": 5}


async def test_an_order_whose_vend_outcome_was_lost_is_reported_not_vended_again(
    tmp_path: Path, sim: SimHandle
) -> None:
    config = vending_config(tmp_path, sim)
    record = {"machine": "vending-1", "slot": 1, "barcode": COLA, "state": "started"}
    await seed_journal(tmp_path, orders=[paid("o-3")], ops=[PutSetting("vend/order/o-3", record)])
    vends = len(sim.get(MACHINE)["vends"])
    store = await started(config, sim)
    try:
        await eventually(lambda: store.events("vend.uncertain"))
        await store.settle()
        assert store.data("vend.uncertain") == [
            {"machine": "vending-1", "slot": 1, "barcode": COLA, "order": "o-3"}
        ]
        assert store.agent.state()["vending"]["vending-1"]["uncertain"] == ["o-3"]
        assert store.agent.store.orders.by_id["o-3"]["status"] == "pending"
        assert len(sim.get(MACHINE)["vends"]) == vends
    finally:
        await store.stop()
    # and only once: the next start has nothing new to say about it
    store = await started(config, sim)
    try:
        await store.settle()
        assert len(store.events("vend.uncertain")) == 1
    finally:
        await store.stop()
