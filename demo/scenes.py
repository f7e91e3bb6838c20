"""The demo's later scenes: the pick slip on the store's printer, the locker, the vending
machine, the hub's stock ledger and what Meituan shows, and where the owner looks. Each
scene acts through the same doors a real store has (the simulator's control API for
people and faults, signed commands over MQTT for the owner, the hub's HTTP API) and
stops the demo with the reason when the store does not do what it says."""

from __future__ import annotations

import json
import time
from typing import Any

from demo.owner import dashboard_login, hub_api, openapi
from demo.services import hub_events
from demo.stage import STORE, Stage, expect, say, wait_for

GUM = "6923450657713"
GUM_SKU = "gum"  # the Meituan SKU of 绿箭口香糖, as the stand-in's order lists it
# The owner's catalog at the hub (prices in yuan; 货架号 as on the pick lists).
PRODUCTS = [
    {"barcode": "6901028075022", "name": "可口可乐 500ml", "price": 3.5, "cost": 2.1,
     "shelf": "A3", "low_stock": 4},
    {"barcode": GUM, "name": "绿箭口香糖", "price": 2.0, "cost": 1.2, "shelf": "C1",
     "low_stock": 5},
    {"barcode": "6920202888883", "name": "乐事薯片 原味", "price": 6.5, "cost": 4.0,
     "shelf": "B1", "low_stock": 3},
]  # fmt: skip
NAMES = {p["barcode"]: p["name"] for p in PRODUCTS}


def pick_slip(stage: Stage, order_id: str, code: str, day_seq: int) -> None:
    """The slip printer-1 printed for a new order, as the simulated printer decoded it."""

    def slips() -> list[dict[str, Any]]:
        jobs = stage.sim.call("GET", "/printers/printer-1/jobs")
        return [j for j in jobs if code in j["qr"] and j["cut"]]

    printed = wait_for(slips, "the pick slip on printer-1")
    expect(len(printed) == 1, f"one pick slip for the order, got {len(printed)}")
    slip = printed[0]
    done = wait_for(
        lambda: [e for e in stage.journal.events("print.done") if e["data"].get("ref") == order_id],
        "print.done for the slip",
    )
    expect(f"#{day_seq}" in slip["text"], f"the slip to show the day number #{day_seq}")
    expect(len(done) == 1 and done[0]["data"]["kind"] == "pick_slip", "one pick slip, printed")
    say("   printer-1 printed its pick slip (订单小票); the simulator decoded the ESC/POS:")
    for line in slip["text"].splitlines():
        if line.strip():
            say(f"   | {line.rstrip()}")
    say(f"   QR code on the slip: {json.dumps(slip['qr'])} (the pickup code)")


def _compartment(stage: Stage, slot: int) -> dict[str, Any]:
    return stage.sim.call("GET", "/lockbus/lockbus-1")["boards"]["2"][str(slot)]


def took_now(barcode: str | None) -> str:
    return f"it holds {NAMES.get(barcode, barcode)}" if barcode else "it was empty"


def locker(stage: Stage, number: int) -> None:
    say(f"{number}. 储物柜 Locker: the owner opens compartment 3 of locker-1 with a signed command")
    args = {"locker": "locker-1", "slot": 3}
    for line in stage.commands.shell("locker.open", args):
        say(f"   {line}")
    seq = stage.journal.last_seq()
    before = _compartment(stage, 3)["unlock_count"]
    reply = stage.commands.send("locker.open", args)
    expect(reply["ok"] and reply["result"]["opened"] is True, f"locker-1 slot 3 open: {reply}")
    channel = _compartment(stage, 3)
    expect(
        channel["unlock_count"] == before + 1 and channel["locked"] is False,
        "lock board 2 channel 3 to get one OPEN and read open",
    )
    barcode = reply["result"]["barcode"]
    say(f"   reply: {json.dumps(reply['result'], ensure_ascii=False)}")
    say(f"   -> lock board 2, channel 3 got OPEN and its feedback reads open ({took_now(barcode)})")
    opened = wait_for(lambda: stage.journal.events("locker.opened", seq), "locker.opened")[0]
    stage.sim.call("POST", "/lockbus/lockbus-1/boards/2/channels/3/contact", {"open": False})
    wait_for(lambda: stage.journal.events("locker.closed", seq), "locker.closed")
    expect(_compartment(stage, 3)["locked"] is True, "the compartment to read shut")
    say("   the customer takes it and shuts the compartment -> locker.closed")
    wait_for(
        lambda: any(
            e["id"] == opened["id"] for e in hub_events(stage.hub_url, STORE, stage.store_token)
        ),
        "locker.opened at the hub",
    )
    say(f"   the hub has locker.opened {json.dumps(opened['data'], ensure_ascii=False)}")


def catalog(stage: Stage, number: int) -> str:
    """The owner lists the products and counts the gum; returns the stock-take's source."""
    say(f"{number}. 商品目录 Catalog: the owner lists the products at the hub and counts the gum")
    owner = stage.merchant_token
    hub_api(stage.hub_url, owner, "POST", f"/api/v1/stores/{STORE}/catalog", {"products": PRODUCTS})
    say(f"   POST /api/v1/stores/{STORE}/catalog with {len(PRODUCTS)} products (merchant token)")

    def delivered() -> bool:
        listed = hub_api(stage.hub_url, owner, "GET", f"/api/v1/stores/{STORE}/catalog")
        return (listed["delivery"] or {}).get("outcome") == "acked"

    wait_for(delivered, "the store to take the catalog")
    say("   the hub sent them to the store as a signed catalog.upsert; the agent acked it")
    key = f"demo-stocktake-{int(time.time() * 1000)}"
    counted = hub_api(
        stage.hub_url,
        owner,
        "POST",
        f"/api/v1/stores/{STORE}/stock/{GUM}",
        {"qty": 24, "reason": "adjust", "key": key, "note": "盘点 stock-take"},
    )
    expect(counted["qty"] == 24, f"the stock-take to set 24, got {counted}")
    say(f'   POST /api/v1/stores/{STORE}/stock/{GUM} {{"qty": 24, "reason": "adjust"}}: 24 on hand')
    wait_for(lambda: stage.meituan.stock.get(GUM_SKU) == 24, "Meituan to be told 24 gum")
    say(f"   Meituan's SKU {GUM_SKU!r} (learned from order #27, matched by barcode) now shows 24")
    return f"api:{key}"


def vending(stage: Stage, number: int) -> dict[str, Any]:
    """A vend that works and one that jams; returns the vend's stock.changed event."""
    say(f"{number}. 售货机 Vending: a signed vend on vending-1, then a jammed one")
    machine = "/vending/vending-1"
    args = {"machine": "vending-1", "slot": 4}
    for line in stage.commands.shell("vend", args):
        say(f"   {line}")
    seq = stage.journal.last_seq()
    slots = stage.sim.call("GET", machine)["slots"]
    reply = stage.commands.send("vend", args)
    expect(reply["ok"] and reply["result"]["result"] == "success", f"the vend to work: {reply}")
    expect(
        stage.sim.call("GET", machine)["slots"]["4"]["stock"] == slots["4"]["stock"] - 1,
        "slot 4 of the machine to hold one less",
    )
    moved = wait_for(lambda: stage.journal.events("stock.changed", seq), "stock.changed")[0]
    expect(
        (moved["data"]["barcode"], moved["data"]["delta"], moved["data"]["reason"])
        == (GUM, -1, "vend"),
        f"one gum counted out, got {moved['data']}",
    )
    price = reply["result"].get("price", 2.0)
    say(f"   -> slot 4 dropped 1 x 绿箭口香糖 (¥{price:.2f}): vend.completed, stock.changed -1")

    say('   the machine jams: POST /vending/vending-1/fault {"slot": 5, "fault": "jam"}')
    stage.sim.call("POST", f"{machine}/fault", {"slot": 5, "fault": "jam"})
    for line in stage.commands.shell("vend", {"machine": "vending-1", "slot": 5}):
        say(f"   {line}")
    reply = stage.commands.send("vend", {"machine": "vending-1", "slot": 5})
    expect(reply["ok"] and reply["result"]["result"] == "jammed", f"a jammed vend: {reply}")
    failed = wait_for(lambda: stage.journal.events("vend.failed", seq), "vend.failed")[0]
    refund = failed["data"]["refund"]
    expect(failed["data"]["fault"] == "jammed" and refund["amount"] > 0, "a refund request")
    expect(len(stage.journal.events("stock.changed", seq)) == 1, "no stock moved by the jam")
    expect(
        stage.sim.call("GET", machine)["slots"]["5"]["stock"] == slots["5"]["stock"],
        "nothing to leave slot 5",
    )
    say(
        f"   -> vend.failed (jammed): refund ¥{refund['amount']:.2f} requested; "
        "nothing left the machine and no stock moved"
    )
    return moved


def stock(stage: Stage, number: int, stocktake: str, moved: dict[str, Any]) -> None:
    say(f"{number}. 库存 Stock: the hub's ledger for 绿箭口香糖, and what Meituan shows")
    path = f"/api/v1/stores/{STORE}/stock/{GUM}?limit=5"

    def booked() -> dict[str, Any] | None:
        item = hub_api(stage.hub_url, stage.merchant_token, "GET", path)
        return item if item["entries"] and item["entries"][0]["reason"] == "vend" else None

    item = wait_for(booked, "the vend in the hub's ledger")
    since = []
    for entry in item["entries"]:
        if entry["source"] == stocktake:
            break
        since.append(entry)
    expect(
        [(e["delta"], e["source"]) for e in since] == [(-1, f"event:{moved['id']}")],
        f"one movement since the stock-take, the vend; got {since}",
    )
    say(f"   GET {path.split('?')[0]}: {item['qty']} on hand; newest entries:")
    for entry in item["entries"][: len(since) + 2]:
        say(
            f"   {entry['delta']:+4d} {entry['reason']:<7} -> {entry['qty_after']:>3}  "
            f"({entry['source']})"
        )
    say("   the vend moved it once (booked by its event id), the jammed vend not at all")
    wait_for(
        lambda: stage.meituan.stock.get(GUM_SKU) == item["qty"],
        f"Meituan to be told {item['qty']}",
    )
    expect(not stage.meituan.badly_signed, f"signed calls only: {stage.meituan.badly_signed}")
    say(f"   Meituan was told {GUM_SKU!r} = {item['qty']} (retail/sku/stock, signed)")


def owner_pages(stage: Stage, number: int, demo_token: str) -> None:
    say(f"{number}. 店主看板 Dashboard and API, in a browser:")
    page, url = dashboard_login(stage.hub_url, stage.merchant_token)
    expect(url.endswith(f"/dashboard/stores/{STORE}") and "演示店" in page, "the store's page")
    # Only the demo's well-known token is shown; one set in the environment stays secret.
    shown = demo_token if stage.merchant_token == demo_token else "$SHOPGATE_MERCHANT_TOKEN"
    say(f"   {stage.hub_url}/dashboard  (log in with the merchant token {shown},")
    say(f"   hub.yaml merchants); it lands on {url.removeprefix(stage.hub_url)}:")
    say("   门店状态, 门与设备, 今日订单, 待取货, 销售额与毛利, 库存不足, 最近进出记录 ...")
    doc = openapi(stage.hub_url)
    expect(doc.get("openapi", "").startswith("3.") and bool(doc.get("paths")), "OpenAPI")
    say(f"   {stage.hub_url}/api/v1/openapi.json  (the hub's API: OpenAPI {doc['openapi']},")
    say(f"   {len(doc['paths'])} paths; open it in Swagger UI or Postman)")


def courier_at_poster(stage: Stage, number: int) -> None:
    """A rider with no pickup code scans the door poster, finds their order in the list
    and types the last 4 digits of the Meituan order number (CONTRACTS section 8)."""
    say(f"{number}. A Meituan rider with no code scans the door poster (骑手取货):")
    mt_id = f"{int(time.time())}8415"
    chips = {"sku": "chips", "barcode": "6920202888883", "name": "乐事薯片 原味", "qty": 1,
             "price": 6.5}  # fmt: skip
    stage.meituan.push_order(stage.hub_url, mt_id, [chips], day_seq=31)
    order_id = f"meituan-{mt_id}"
    wait_for(lambda: stage.journal.order_status(order_id) == "pending", "the order at the store")
    door = f"/api/v1/stores/{STORE}/doors/front/courier"
    listed = hub_api(stage.hub_url, "", "GET", door)["orders"]
    shown = ", ".join(f"{o['platform']} #{o['day_seq']}" for o in listed)
    say(f"   the poster's courier side lists the open orders (no customer names): {shown}")
    say(f"   {stage.hub_url}/s/{STORE}/front/courier  (try it in a phone browser: tail 8415)")
    before = stage.sim.unlocks()
    claimed = hub_api(
        stage.hub_url, "", "POST", door, {"platform": "meituan", "day_seq": 31, "tail": "8415"}
    )
    expect(claimed["order"] == order_id, f"the claim names {order_id}")
    wait_for(lambda: stage.sim.unlocks() > before, "the door to open for the rider")
    picks = "; ".join(
        f"{i['qty']} x {i['name']} (shelf {i['shelf'] or '-'})" for i in claimed["items"]
    )
    say(f"   rider types #31 and 8415 -> 门已打开 (opened: {claimed['opened']}); take: {picks}")
    wait_for(
        lambda: (
            stage.journal.events("pickup.completed")
            and any(
                e["data"]["order"] == order_id for e in stage.journal.events("pickup.completed")
            )
        ),
        "pickup.completed",
    )
    say("   the agent journals pickup.completed; no pickup code was ever needed")
