"""Self-checkout in one agent process, with everything around it real.

The simulator's scanner `scanner-checkout` types over a real pty into the agent's serial
scanner driver; the agent (in this process, so its state can be read directly) serves
the checkout page on a real port and asks a real hub application (aiohttp server on a
real port, SQLite) for payments; the hub sends `checkout.paid` signed over a real
mosquitto. Only the processes are folded into one: tests/e2e/test_checkout.py runs
them apart.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from cloud.api.payments import PAYMENTS
from cloud.app import create_app
from cloud.bus import HubBus
from cloud.config import HubConfig
from cloud.db.engine import Database
from cloud.db.principals import sync_principals
from cloud.payments.service import Payments
from cloud.root import attach_bus
from tests.support.agent import make_keys, write_config
from tests.support.broker import BrokerHandle, free_port, start_broker
from tests.support.inproc_agent import InprocAgent, start_sim_with
from tests.support.sim import SimHandle

STORE = "demo-001"
TOKEN = "tok-store-one-0123456789abcdef"
COLA, GUM, WATER = "6901234567892", "96385074", "6921168509256"
CATALOG = [
    {"barcode": COLA, "name": "可乐 330ml", "price": 3.5, "shelf": "A3", "stock": 24},
    {"barcode": GUM, "name": "口香糖", "price": 12, "shelf": "C1"},
    {"barcode": WATER, "name": "矿泉水", "price": 2.0, "shelf": "A1"},
]


def start_checkout_sim(run_dir: Path) -> SimHandle:
    """The demo store's hardware plus a checkout scanner (CR-terminated, as many are)."""
    return start_sim_with(
        run_dir,
        lambda raw: raw["devices"].append(
            {"id": "scanner-checkout", "kind": "scanner", "terminator": "\r"}
        ),
    )


def agent_edit(
    hub_url: str, mqtt_url: str, page: int, opts: dict[str, Any] | None = None
) -> Callable[[dict[str, Any]], None]:
    opts = opts or {}

    def edit(raw: dict[str, Any]) -> None:
        if opts.get("no_printing"):
            raw.pop("printing", None)  # printers, but no printing service: `print` is unsupported
        raw["hub"] = {"url": hub_url, "token": TOKEN}
        raw["mqtt"] = {"url": mqtt_url, "reconnect_min_seconds": 0.05, "reconnect_max_seconds": 0.5}
        raw["devices"].append(
            {"id": "scanner-checkout", "kind": "scanner", "port": "sim/scanner-checkout"}
        )
        raw["checkout"] = [
            {"id": "co-1", "scanner": "scanner-checkout", "listen": f"127.0.0.1:{page}"}
            | ({"printer": opts["printer"]} if "printer" in opts else {})
        ]

    return edit


class Store(InprocAgent):
    """The agent with its checkout page, and the hub and broker around it."""

    broker: BrokerHandle
    bus: HubBus
    hub_url: str
    page_url: str
    http: aiohttp.ClientSession
    payments: Payments

    def scan(self, code: str) -> None:
        self.sim.post("/scanners/scanner-checkout/scan", {"code": code})

    async def state(self) -> dict[str, Any]:
        async with self.http.get(self.page_url + "/state") as resp:
            return await resp.json()

    async def wait_state(self, check: Callable[[dict[str, Any]], bool], within: float = 5) -> dict:
        async with asyncio.timeout(within):
            while True:
                state = await self.state()
                if check(state):
                    return state
                await asyncio.sleep(0.02)

    async def send(self, cmd: str, args: dict[str, Any]) -> dict[str, Any]:
        reply = await self.bus.send_command(STORE, cmd, args, wait_reply=5)
        assert reply is not None, f"no reply to {cmd}"
        return reply


async def start_agent(
    run_dir: Path, sim: SimHandle, hub_url: str, mqtt_url: str, page: int, opts: dict[str, Any]
) -> Store:
    """The demo config's agent with a checkout, once it is online at the broker."""
    config = write_config(run_dir, agent_edit(hub_url, mqtt_url, page, opts))
    return await Store.start(
        config, sim, ready=lambda a: bool(a.remote and a.remote.connected), within=10
    )


@pytest.fixture
async def store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> AsyncIterator[Store]:
    monkeypatch.setenv("SHOPGATE_RUN", str(tmp_path))
    broker = start_broker(tmp_path)
    make_keys(tmp_path)
    sim = start_checkout_sim(tmp_path)
    cfg = HubConfig.model_validate(
        {
            "http": {"listen": "127.0.0.1:0"},
            "storage": {"dir": str(tmp_path / "hub")},
            "signing": {"key_file": str(tmp_path / "keys" / "hub-signing.pem"), "kid": "demo"},
            "mqtt": {"url": broker.url, "instance_id": "checkout-test"},
            "stores": [{"id": STORE, "token": TOKEN}],
            "payments": {"demo": True, "notify_secret": "s3cret-for-tests"},
        }
    )
    db = await Database.open(str(tmp_path / "hub" / "hub.db"))
    await sync_principals(db, cfg.stores, cfg.merchants)
    app = create_app(cfg, db)
    bus = HubBus.from_config(cfg)
    attach_bus(app, bus)
    server = TestServer(app)
    await server.start_server()
    hub_url = str(server.make_url("")).rstrip("/")
    page = free_port()
    s = await start_agent(tmp_path, sim, hub_url, broker.url, page, getattr(request, "param", {}))
    s.broker, s.bus, s.hub_url, s.payments = broker, bus, hub_url, app[PAYMENTS]
    s.page_url = f"http://127.0.0.1:{page}"
    s.http = aiohttp.ClientSession()
    try:
        async with asyncio.timeout(10):
            while not bus.connected:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        reply = await s.send("catalog.upsert", {"products": CATALOG})
        assert reply["ok"], reply
        await s.wait_state(lambda st: st["scanner_online"])
        yield s
    finally:
        await s.http.close()
        await s.stop()
        await server.close()
        await db.close()
        sim.stop()
        broker.stop()


async def test_scan_pay_on_the_hub_page_and_the_sale_is_journaled_once(store: Store) -> None:
    store.scan(COLA)
    store.scan(GUM)
    store.scan(COLA)
    state = await store.wait_state(lambda st: st["count"] == 3)
    assert state["items"] == [
        {"barcode": COLA, "name": "可乐 330ml", "qty": 2, "price": 3.5},
        {"barcode": GUM, "name": "口香糖", "qty": 1, "price": 12.0},
    ]
    assert state["total"] == 19.0 and state["payment"] is None
    page = await (await store.http.get(store.page_url + "/")).text()
    assert "合计 ¥19.00" in page and "可乐 330ml" in page and 'http-equiv="refresh"' in page

    # 付款 on the page: the hub makes a payment, the page shows its QR.
    async with store.http.post(store.page_url + "/pay", allow_redirects=False) as resp:
        assert resp.status == 303
    state = await store.wait_state(lambda st: st["payment"] is not None)
    qr_url = state["payment"]["qr_url"]
    assert qr_url.startswith(store.hub_url + "/pay/pay_") and state["payment"]["amount"] == 19.0
    page = await (await store.http.get(store.page_url + "/")).text()
    assert "<svg" in page and "请用手机扫码付款 ¥19.00" in page
    # Scans while paying change nothing: what is paid is what was asked.
    store.scan(WATER)
    await store.wait_state(lambda st: "正在等待付款" in st["message"])
    assert (await store.state())["total"] == 19.0

    # The customer's phone opens the QR and pays (the demo provider).
    pay_page = await (await store.http.get(qr_url)).text()
    assert "¥19.00" in pay_page and "确认支付" in pay_page
    async with store.http.post(qr_url + "/confirm") as resp:
        assert "支付成功" in await resp.text()

    state = await store.wait_state(lambda st: "支付成功" in st["message"])
    assert state["items"] == [] and state["payment"] is None
    [sale] = store.events("sale.completed")
    payment_id = qr_url.rsplit("/", 1)[1]
    assert sale["data"] | {"sale": "x"} == {
        "sale": "x",
        "channel": "checkout",
        "checkout": "co-1",
        "items": [
            {"barcode": COLA, "name": "可乐 330ml", "qty": 2, "price": 3.5},
            {"barcode": GUM, "name": "口香糖", "qty": 1, "price": 12.0},
        ],
        "total": 19.0,
        "payment": {"id": payment_id, "method": "demo"},
        "order": None,
    }
    moves = store.events("stock.changed")
    assert [(m["data"]["barcode"], m["data"]["delta"], m["data"]["reason"]) for m in moves] == [
        (COLA, -2, "sale"),
        (GUM, -1, "sale"),
    ]
    # One transaction: the sale and its moves are consecutive and share their timestamp.
    assert [m["seq"] for m in moves] == [sale["seq"] + 1, sale["seq"] + 2]
    assert {m["ts"] for m in moves} == {sale["ts"]}
    assert all(m["data"]["source"] == sale["data"]["sale"] for m in moves)
    assert [m["data"]["qty_after"] for m in moves] == [22, None]  # cola counted from the hub
    assert store.agent.store.stock.qty(COLA) == 22

    # The hub learns the store has it; a second checkout.paid records nothing twice.
    async with asyncio.timeout(5):
        while (await store.payments.get(payment_id)).delivery != "acked":  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    args = {"checkout": "co-1", "payment": payment_id, "cart": sale["data"]["sale"], "amount": 19.0}
    reply = await store.send("checkout.paid", args)
    assert reply["ok"] is False and reply["error"]["code"] == "already_paid"
    assert len(store.events("sale.completed")) == 1 and len(store.events("stock.changed")) == 2


@pytest.mark.parametrize("store", [{"printer": "printer-1", "no_printing": True}], indirect=True)
async def test_a_receipt_that_cannot_print_leaves_the_sale_standing(store: Store) -> None:
    store.scan(GUM)
    await store.wait_state(lambda st: st["count"] == 1)
    store.scan("SG-PAY")
    state = await store.wait_state(lambda st: st["payment"] is not None)
    async with store.http.post(state["payment"]["qr_url"] + "/confirm") as resp:
        assert resp.status == 200
    state = await store.wait_state(lambda st: "打印失败" in st["receipt"])
    assert "交易已完成" in state["receipt"] and "支付成功" in state["message"]
    assert len(store.events("sale.completed")) == 1 and len(store.events("stock.changed")) == 1
    assert "小票打印失败" in await (await store.http.get(store.page_url + "/")).text()


async def test_unknown_and_malformed_barcodes_are_shown_and_not_added(store: Store) -> None:
    store.scan("6901234567893")  # wrong check digit
    await store.wait_state(lambda st: "无法识别的条码" in st["message"])
    store.scan("4006381333931")  # valid EAN-13, not in this store's catalog
    state = await store.wait_state(lambda st: "未找到该商品" in st["message"])
    assert "4006381333931" in state["message"] and state["items"] == []
    store.scan("0" + COLA[:-1])  # not the same product: a wrong check digit again
    store.scan(GUM)
    state = await store.wait_state(lambda st: st["count"] == 1)
    assert state["items"][0]["barcode"] == GUM


async def test_clearing_with_the_special_barcode_and_cancelling_a_payment(store: Store) -> None:
    store.scan(WATER)
    await store.wait_state(lambda st: st["count"] == 1)
    store.scan("SG-PAY")
    state = await store.wait_state(lambda st: st["payment"] is not None)
    payment_id = state["payment"]["id"]
    cart = state["cart"]
    store.scan("SG-CLEAR")
    state = await store.wait_state(lambda st: st["payment"] is None and st["count"] == 0)
    assert "已清空" in state["message"]
    assert (await store.payments.get(payment_id)).status == "cancelled"
    # Too late: the hub refuses to take the money for the cancelled cart...
    async with store.http.post(f"{store.hub_url}/pay/{payment_id}/confirm") as resp:
        assert resp.status == 409
    # ...and a checkout.paid for it (a replayed or forged-by-hub one) finds no cart.
    args = {"checkout": "co-1", "payment": payment_id, "cart": cart, "amount": 2.0}
    reply = await store.send("checkout.paid", args)
    assert reply["error"]["code"] == "unknown_cart"
    assert store.events("sale.completed") == [] and store.events("stock.changed") == []


async def test_a_paid_command_for_another_amount_or_checkout_is_refused(store: Store) -> None:
    store.scan(WATER)
    await store.wait_state(lambda st: st["count"] == 1)
    store.scan("SG-PAY")
    state = await store.wait_state(lambda st: st["payment"] is not None)
    base = {"checkout": "co-1", "payment": state["payment"]["id"], "cart": state["cart"]}
    reply = await store.send("checkout.paid", base | {"amount": 1.0})
    assert reply["error"]["code"] == "amount_mismatch"
    reply = await store.send("checkout.paid", base | {"checkout": "co-9"})
    assert reply["error"]["code"] == "bad_args"
    assert store.events("sale.completed") == []
    assert (await store.state())["payment"] is not None  # still waiting to be paid


async def test_offline_payment_is_refused_politely_and_the_cart_kept(store: Store) -> None:
    store.scan(COLA)
    await store.wait_state(lambda st: st["count"] == 1)
    store.broker.stop()
    async with asyncio.timeout(10):
        while store.agent.remote.connected:  # noqa: ASYNC110 - no event for it
            await asyncio.sleep(0.05)
    async with store.http.post(store.page_url + "/pay") as resp:
        page = await resp.text()
    assert "网络暂不可用，暂时无法自助付款" in page and "可乐 330ml" in page
    state = await store.state()
    assert state["count"] == 1 and state["payment"] is None
    assert store.events("sale.completed") == []


async def test_an_unreachable_hub_is_the_same_polite_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The broker is up (the agent is "online"), the hub's HTTP is not.
    monkeypatch.setenv("SHOPGATE_RUN", str(tmp_path))
    broker = start_broker(tmp_path)
    make_keys(tmp_path)
    sim = start_checkout_sim(tmp_path)
    page = free_port()
    try:
        store = await start_agent(
            tmp_path, sim, f"http://127.0.0.1:{free_port()}", broker.url, page, {}
        )
        try:
            store.agent.catalog[COLA] = CATALOG[0]
            async with aiohttp.ClientSession() as http:
                sim.post("/scanners/scanner-checkout/scan", {"code": COLA})
                async with asyncio.timeout(5):
                    while True:
                        async with http.get(f"http://127.0.0.1:{page}/state") as resp:
                            if (await resp.json())["count"] == 1:
                                break
                        await asyncio.sleep(0.02)
                async with http.post(f"http://127.0.0.1:{page}/pay") as resp:
                    assert "网络暂不可用" in await resp.text()
                async with http.get(f"http://127.0.0.1:{page}/state") as resp:
                    state = await resp.json()
            assert state["count"] == 1 and state["payment"] is None
        finally:
            await store.stop()
    finally:
        sim.stop()
        broker.stop()
    assert store.events("sale.completed") == []


def test_state_json_is_what_the_page_shows(tmp_path: Path) -> None:
    from agent.services.checkout_page import render

    html = render(
        {
            "checkout": "co-1",
            "cart": "c",
            "items": [{"barcode": COLA, "name": "<b>可乐</b>", "qty": 2, "price": 3.5}],
            "count": 2,
            "total": 7.0,
            "payment": {"id": "p", "qr_url": "http://hub/pay/p", "amount": 7.0},
            "message": "请用手机扫码付款 ¥7.00",
            "message_level": "info",
            "receipt": "",
            "scanner_online": False,
        }
    )
    assert "&lt;b&gt;可乐&lt;/b&gt;" in html  # escaped
    assert "扫码枪未连接" in html and "<svg" in html and 'id="pay"' not in html
    json.dumps({"ok": True})
