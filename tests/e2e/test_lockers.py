"""The demo store's locker-1 driven end to end: a signed command through the real broker
reaches the agent (the demo config.yaml), which opens a compartment on the simulator's
lock board 2; what happened reaches the hub. Simulator, broker, agent and hub are
separate processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_remote_ops import publish_and_read_reply, retained, sign
from tests.support.agent import AgentHandle, Keys, start_agent
from tests.support.broker import BrokerHandle, start_broker
from tests.support.hub import HubHandle, start_hub
from tests.support.inproc_agent import paid_order as paid
from tests.support.sim import SimHandle, wait_until

COLA = "6901028075022"


def channel(sim: SimHandle, slot: int) -> dict[str, Any]:
    return sim.get("/lockbus/lockbus-1")["boards"]["2"][str(slot)]


def command(broker: BrokerHandle, run_dir: Path, name: str, args: dict[str, Any]) -> dict:
    return publish_and_read_reply(broker, sign(run_dir, name, args))


def paid_order(oid: str, slot: int) -> dict[str, Any]:
    return paid(oid, "locker-1", slot, payment={"id": f"pay-{oid}", "method": "alipay"})


@pytest.fixture
def store(sim: SimHandle, keys: Keys, run_dir: Path):
    broker = start_broker(run_dir)
    hub = start_hub(run_dir)
    try:
        env = {"SHOPGATE_MQTT_URL": broker.url, **hub.agent_env}
        with start_agent(run_dir, env=env) as agent:
            wait_until(
                lambda: retained(broker, "shopgate/demo-001/status").get("online"),
                10,
                "the agent online at the broker",
            )
            yield broker, hub, agent
    finally:
        hub.stop()
        broker.stop()


def at_hub(hub: HubHandle, type_: str) -> list[dict[str, Any]]:
    return [e["data"] for e in hub.all_events() if e["type"] == type_]


def test_locker_open_over_mqtt_opens_the_compartment_and_reaches_the_hub(
    sim: SimHandle, run_dir: Path, store: tuple[BrokerHandle, HubHandle, AgentHandle]
):
    broker, hub, agent = store
    reply = command(broker, run_dir, "locker.open", {"locker": "locker-1", "slot": 3})
    assert reply["ok"] is True, reply
    assert reply["result"] == {
        "locker": "locker-1",
        "slot": 3,
        "opened": True,
        "barcode": COLA,
        "order": None,
    }
    ch = channel(sim, 3)
    assert ch["unlock_count"] == 1 and ch["locked"] is False
    opened = agent.wait_event("locker.opened")
    moved = agent.wait_event("stock.changed")
    assert (
        opened["data"]["slot"] == 3 and opened["data"]["by"] == "shopgate-hub"
    )  # the command's sub
    assert (moved["data"]["barcode"], moved["data"]["delta"], moved["data"]["reason"]) == (
        COLA,
        -1,
        "locker",
    )
    wait_until(lambda: at_hub(hub, "stock.changed") or None, 10, "stock.changed at the hub")
    assert at_hub(hub, "locker.opened") == [opened["data"]]
    state = wait_until(
        lambda: (
            (s := retained(broker, "shopgate/demo-001/state"))["lockers"]["locker-1"]["slots"]["3"][
                "stock"
            ]
            == 0
            and s
        ),
        5,
        "the retained state",
    )
    assert state["lockers"]["locker-1"]["slots"]["3"]["door"] == "open"

    # The customer shuts it.
    sim.post("/lockbus/lockbus-1/boards/2/channels/3/contact", {"open": False})
    closed = agent.wait_event("locker.closed")
    assert closed["data"] == {"locker": "locker-1", "slot": 3}


def test_a_paid_order_upserted_twice_opens_its_compartment_once(
    sim: SimHandle, run_dir: Path, store: tuple[BrokerHandle, HubHandle, AgentHandle]
):
    broker, hub, agent = store
    for _ in range(2):
        reply = command(broker, run_dir, "orders.upsert", {"orders": [paid_order("o-77", 1)]})
        assert reply["ok"] is True, reply
    pickup = agent.wait_event("pickup.completed")
    assert pickup["data"]["order"] == "o-77" and pickup["data"]["channel"] == "locker"
    reply = command(broker, run_dir, "orders.upsert", {"orders": [paid_order("o-77", 1)]})
    assert reply["ok"] is True
    wait_until(lambda: at_hub(hub, "pickup.completed") or None, 10, "the pickup at the hub")
    assert channel(sim, 1)["unlock_count"] == 1
    assert [e["data"]["order"] for e in agent.journal.events("locker.opened")] == ["o-77"]
    [sale] = at_hub(hub, "sale.completed")
    assert sale["order"] == "o-77" and sale["total"] == 3.5 and sale["channel"] == "locker"
    assert agent.journal.order_status("o-77") == "picked_up"


def test_a_stuck_compartment_fails_and_moves_no_stock(
    sim: SimHandle, run_dir: Path, store: tuple[BrokerHandle, HubHandle, AgentHandle]
):
    broker, hub, agent = store
    sim.post("/lockbus/lockbus-1/boards/2/channels/4/fault", {"stuck": True})
    reply = command(broker, run_dir, "locker.open", {"locker": "locker-1", "slot": 4})
    assert reply["ok"] is False
    assert reply["error"]["code"] == "failed" and reply["error"]["reason"] == "no_feedback"
    failed = agent.wait_event("locker.failed")
    assert failed["data"] == {
        "locker": "locker-1",
        "slot": 4,
        "order": None,
        "reason": "no_feedback",
    }
    assert channel(sim, 4)["unlock_count"] == 1
    wait_until(lambda: at_hub(hub, "locker.failed") or None, 10, "locker.failed at the hub")
    assert agent.journal.events("stock.changed") == []
    assert agent.journal.events("locker.opened") == []
