"""Self-checkout end to end: simulator, mosquitto, hub and agent as separate processes.

Two products are scanned on the simulator's checkout scanner, the customer pays on the
hub's (demo) pay page, the agent journals the sale and its stock moves and relays them
to the hub. With the hub gone, paying is refused politely and nothing is sold.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from agent.clock import Clock
from agent.journal import Journal, PutProduct
from tests.support.agent import Keys, start_agent, write_config
from tests.support.broker import free_port, start_broker
from tests.support.hub import start_hub
from tests.support.sim import start_sim, wait_until

SIM_STORE = Path(__file__).resolve().parents[2] / "firmware-sim" / "shopgate_sim" / "store.yaml"
COLA, GUM = "6901234567892", "96385074"
PRODUCTS = [
    {"barcode": COLA, "name": "可乐 330ml", "price": 3.5, "shelf": "A3"},
    {"barcode": GUM, "name": "口香糖", "price": 12.0, "shelf": "C1"},
]


def seed_catalog(run_dir: Path) -> None:
    """The catalog as catalog.upsert leaves it, written before the agent starts."""

    async def go() -> None:
        journal = await Journal.open(run_dir / "agent" / "journal.db", "demo-001", Clock())
        try:
            await journal.apply([PutProduct(p) for p in PRODUCTS])
        finally:
            await journal.close()

    (run_dir / "agent").mkdir(parents=True, exist_ok=True)
    asyncio.run(go())


def http(method: str, url: str, body: dict | None = None) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_scan_two_products_pay_on_the_hub_page_and_the_sale_reaches_the_hub(
    run_dir: Path, keys: Keys
) -> None:
    raw = yaml.safe_load(SIM_STORE.read_text(encoding="utf-8"))
    raw["devices"].append({"id": "scanner-checkout", "kind": "scanner"})
    (run_dir / "sim-store.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True))
    page = f"http://127.0.0.1:{(page_port := free_port())}"

    def edit(cfg: dict[str, Any]) -> None:
        cfg["devices"].append(
            {"id": "scanner-checkout", "kind": "scanner", "port": "sim/scanner-checkout"}
        )
        cfg["checkout"] = [
            {
                "id": "co-1",
                "scanner": "scanner-checkout",
                "printer": "printer-1",
                "listen": f"127.0.0.1:{page_port}",
            }
        ]

    config = write_config(run_dir, edit)
    seed_catalog(run_dir)
    broker = start_broker(run_dir)
    mqtt = {"SHOPGATE_MQTT_URL": broker.url}
    try:
        with (
            start_sim(run_dir, config=run_dir / "sim-store.yaml") as sim,
            start_hub(run_dir, env=mqtt) as hub,
            start_agent(run_dir, config, env={**hub.agent_env, **mqtt}) as agent,
        ):

            def state() -> dict[str, Any]:
                return json.loads(http("GET", page + "/state")[1])

            wait_until(
                lambda: "连接" not in state()["message"] and state()["scanner_online"],
                10,
                "the checkout scanner",
            )
            sim.post("/scanners/scanner-checkout/scan", {"code": COLA})
            sim.post("/scanners/scanner-checkout/scan", {"code": GUM})
            wait_until(lambda: state()["count"] == 2, 10, "two products in the cart")
            assert state()["total"] == 15.5

            # 付款 on the tablet page; the agent's MQTT session must be up first.
            def paying() -> dict | None:
                http("POST", page + "/pay")
                return state()["payment"]

            payment = wait_until(paying, 15, "a payment QR")
            assert payment["amount"] == 15.5 and payment["qr_url"].startswith(hub.url + "/pay/")
            status, pay_page = http("GET", payment["qr_url"])
            assert status == 200 and "¥15.50" in pay_page
            status, paid_page = http("POST", payment["qr_url"] + "/confirm")
            assert status == 200 and "支付成功" in paid_page

            sale = agent.wait_event("sale.completed", timeout=10)
            assert sale["data"]["total"] == 15.5
            assert sale["data"]["payment"] == {"id": payment["id"], "method": "demo"}
            assert [(i["barcode"], i["qty"]) for i in sale["data"]["items"]] == [
                (COLA, 1),
                (GUM, 1),
            ]
            moves = agent.journal.events("stock.changed")
            assert [
                (m["data"]["barcode"], m["data"]["delta"], m["data"]["reason"]) for m in moves
            ] == [
                (COLA, -1, "sale"),
                (GUM, -1, "sale"),
            ]
            wait_until(lambda: "支付成功" in state()["message"], 5, "the page to say paid")
            # The receipt comes out of the store's receipt printer (the simulated one).
            receipt = wait_until(
                lambda: next(
                    (j for j in sim.get("/printers/printer-1/jobs") if "购物小票" in j["text"]),
                    None,
                ),
                10,
                "the receipt",
            )
            assert "可乐 330ml" in receipt["text"] and "15.50" in receipt["text"]
            assert sale["data"]["sale"] in receipt["text"] and receipt["cut"]

            def at_hub() -> list[dict] | None:
                events = hub.all_events()
                types = [e["type"] for e in events]
                return (
                    events
                    if "sale.completed" in types and types.count("stock.changed") >= 2
                    else None
                )

            events = wait_until(at_hub, 15, "the sale at the hub")
            assert [e["id"] for e in events if e["type"] == "sale.completed"] == [sale["id"]]
            status, body = hub.request("GET", f"/api/v1/stores/demo-001/payments/{payment['id']}")
            assert status == 200 and body["payment"]["status"] == "paid"
            wait_until(
                lambda: (
                    hub.request("GET", f"/api/v1/stores/demo-001/payments/{payment['id']}")[1][
                        "payment"
                    ]["delivery"]
                    == "acked"
                ),
                10,
                "the store's ack at the hub",
            )

            # The hub goes away: the next customer is told politely, the cart stays.
            hub.stop()
            sim.post("/scanners/scanner-checkout/scan", {"code": COLA})
            wait_until(lambda: state()["count"] == 1, 10, "a product in the new cart")
            status, shown = http("POST", page + "/pay")
            assert status == 200 and "网络暂不可用，暂时无法自助付款" in shown
            assert state()["count"] == 1 and state()["payment"] is None
            assert len(agent.journal.events("sale.completed")) == 1
            assert len(agent.journal.events("stock.changed")) == 2
    finally:
        broker.stop()
