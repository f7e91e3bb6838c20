"""Vending end to end: the real simulator, the real agent (demo config.yaml) and a real
broker, as separate processes. Signed `vend` and `orders.upsert` commands go in through
mosquitto_pub; what happened is read back from the agent's journal and the simulated VMC."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.test_remote_ops import publish_and_read_reply, sign
from tests.support.agent import Keys, start_agent
from tests.support.broker import BrokerHandle, start_broker
from tests.support.sim import SimHandle, wait_until

MACHINE = "/vending/vending-1"


def command(broker: BrokerHandle, run_dir: Path, name: str, args: dict[str, Any]) -> dict:
    reply = publish_and_read_reply(broker, sign(run_dir, name, args))
    assert reply["ok"] is True, reply
    return reply["result"]


def test_vend_a_jam_and_a_paid_order_through_signed_commands(
    sim: SimHandle, keys: Keys, run_dir: Path
) -> None:
    broker = start_broker(run_dir)
    try:
        with start_agent(run_dir, env={"SHOPGATE_MQTT_URL": broker.url}) as agent:
            agent.wait_event(
                "device.online", lambda e: e["data"]["device"] == "vending-1", timeout=10
            )
            wire_before = sim.get(MACHINE)["wire"]

            # 1. vend: one comes out, the store counts one less.
            stock_before = sim.get(MACHINE)["slots"]["3"]["stock"]
            result = command(broker, run_dir, "vend", {"machine": "vending-1", "slot": 3})
            assert result["result"] == "success" and result["barcode"] == "6901234567892"
            completed = agent.wait_event("vend.completed")
            moved = agent.wait_event("stock.changed")
            assert moved["data"]["delta"] == -1 and moved["data"]["reason"] == "vend"
            assert moved["data"]["barcode"] == "6901234567892"
            assert moved["seq"] > completed["seq"]
            assert sim.get(MACHINE)["slots"]["3"]["stock"] == stock_before - 1

            # 2. a jam: the vend fails, a refund is asked for, no stock moves.
            sim.post(f"{MACHINE}/fault", {"slot": 4, "fault": "jam"})
            gum_before = sim.get(MACHINE)["slots"]["4"]["stock"]
            result = command(broker, run_dir, "vend", {"machine": "vending-1", "slot": 4})
            assert result["result"] == "jammed"
            failed = agent.wait_event("vend.failed")
            assert failed["data"]["fault"] == "jammed"
            assert failed["data"]["refund"] == {"amount": 2.0, "order": None, "payment": None}
            assert len(agent.journal.events("stock.changed")) == 1
            assert sim.get(MACHINE)["slots"]["4"]["stock"] == gum_before

            # 3. a paid order, upserted twice (the hub retrying): vended exactly once.
            order = {
                "id": "local-v1",
                "platform": "local",
                "status": "pending",
                "items": [{"barcode": "6901028075022", "name": "可口可乐 500ml", "qty": 1}],
                "paid": True,
                "payment": {"id": "pay-1", "method": "wechat"},
                "dispense": {"device": "vending-1", "slot": 1},
            }
            vends_before = len(sim.get(MACHINE)["vends"])
            command(broker, run_dir, "orders.upsert", {"orders": [order]})
            command(broker, run_dir, "orders.upsert", {"orders": [order]})
            agent.wait_event("pickup.completed", lambda e: e["data"]["order"] == "local-v1")
            wait_until(
                lambda: len(sim.get(MACHINE)["vends"]) > vends_before, 5, "the machine's vend"
            )
            command(broker, run_dir, "orders.upsert", {"orders": [order]})
            wait_until(lambda: sim.get(MACHINE)["wire"]["polls"] > 10, 5, "a few more polls")
            vends = [v for v in sim.get(MACHINE)["vends"][vends_before:] if v["slot"] == 1]
            assert len(vends) == 1 and vends[0]["result"] == "success"
            for_order = [
                e
                for e in agent.journal.events("vend.completed")
                if e["data"]["order"] == "local-v1"
            ]
            assert len(for_order) == 1
            assert agent.journal.order_status("local-v1") == "picked_up"
            # Answer timing is asserted in the driver's test and measured by
            # bench/vending.py; here: the line kept working and no command needed a resend.
            wire = sim.get(MACHINE)["wire"]
            assert wire["polls"] - wire_before["polls"] > 10
            assert wire["duplicates"] == wire_before["duplicates"]
    finally:
        broker.stop()
