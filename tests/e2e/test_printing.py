"""Printing end to end: the simulator, the broker and the agent (the demo config.yaml) are
separate processes; orders and print commands arrive signed over MQTT; what came out of
the simulated printer is read back through its control API and scanned with zxing-cpp."""

from __future__ import annotations

import io
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import zxingcpp
from PIL import Image

from tests.e2e.test_remote_ops import publish_and_read_reply, sign
from tests.support.agent import Keys, start_agent
from tests.support.broker import BrokerHandle, start_broker
from tests.support.sim import SimHandle

P = "/printers/printer-1"
COLA, CHIPS = "6901028075022", "6920202888883"


def command(broker: BrokerHandle, run_dir: Path, name: str, args: dict[str, Any]) -> Any:
    reply = publish_and_read_reply(broker, sign(run_dir, name, args))
    assert reply["ok"] is True, reply
    return reply["result"]


def order(oid: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": oid,
        "platform": "eleme",
        "platform_order_id": f"EL-{oid}",
        "day_seq": 7,
        "pickup_code": "246810",
        "status": "pending",
        "items": [
            {"barcode": COLA, "name": "可口可乐 500ml", "qty": 3, "shelf": "A-02"},
            {"barcode": CHIPS, "name": "乐事薯片 原味", "qty": 1},
        ],
        "note": "请放门口",
    } | extra


def scan(sim: SimHandle, path: str) -> Any:
    with urllib.request.urlopen(sim.control_url + path, timeout=5) as resp:
        (found,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(resp.read())))
    return found


def complete_jobs(sim: SimHandle) -> list[dict[str, Any]]:
    return [j for j in sim.get(P + "/jobs") if j["cut"]]


def test_an_order_over_mqtt_prints_one_pick_slip_that_scans(
    sim: SimHandle, keys: Keys, run_dir: Path
) -> None:
    broker = start_broker(run_dir)
    try:
        with start_agent(run_dir, env={"SHOPGATE_MQTT_URL": broker.url}) as agent:
            command(broker, run_dir, "catalog.upsert", {"products": [
                {"barcode": CHIPS, "name": "乐事薯片 原味", "price": 6.5, "shelf": "C-03"}
            ]})  # fmt: skip
            command(broker, run_dir, "orders.upsert", {"orders": [order("e1")]})
            command(broker, run_dir, "orders.upsert", {"orders": [order("e1", note="改")]})
            agent.wait_event("print.done", timeout=10)
            label = command(
                broker,
                run_dir,
                "print",
                {"printer": "printer-1", "label": {"barcode": CHIPS, "name": "薯片", "price": 6.5}},
            )
            agent.wait_event("print.done", lambda e: e["data"]["job"] == label["job"], timeout=10)
            slips = [
                e for e in agent.journal.events("print.done") if e["data"]["kind"] == "pick_slip"
            ]
            assert [e["data"]["ref"] for e in slips] == ["e1"]
    finally:
        broker.stop()
    slip, tag = complete_jobs(sim)
    for expected in ("饿了么", "#7", "EL-e1", "货架号", "A-02", "C-03", "x3", "请放门口"):
        assert expected in slip["text"], expected
    assert scan(sim, P + "/jobs/0/qr/0").text == "246810"
    found = scan(sim, P + "/jobs/1/barcodes/0")
    assert (found.format, found.text) == (zxingcpp.BarcodeFormat.EAN13, CHIPS)
    assert "￥6.50" in tag["text"]


def test_a_job_queued_when_the_agent_is_killed_prints_once_after_restart(
    sim: SimHandle, keys: Keys, run_dir: Path
) -> None:
    sim.post(P + "/paper", {"out": True})
    broker = start_broker(run_dir)
    try:
        env = {"SHOPGATE_MQTT_URL": broker.url}
        with start_agent(run_dir, env=env) as agent:
            command(broker, run_dir, "orders.upsert", {"orders": [order("e2")]})
            error = agent.wait_event(
                "printer.error", lambda e: e["data"]["job"] is not None, timeout=10
            )
            assert error["data"]["error"] == "paper_out"
            agent.stop(signal.SIGKILL)
        assert [j["status"] for j in agent.journal.print_jobs()] == ["queued"]
        sim.post(P + "/paper", {"out": False})
        with start_agent(run_dir, env=env) as again:
            done = again.wait_event("print.done", timeout=10)
            assert done["data"]["job"] == error["data"]["job"]
            command(broker, run_dir, "orders.upsert", {"orders": [order("e2", note="再来")]})
            time.sleep(1.0)  # room for a second slip, were the order slipped again
    finally:
        broker.stop()
    assert len(agent.journal.events("print.done")) == 1
    (slip,) = complete_jobs(sim)
    assert "EL-e2" in slip["text"]
