"""Stock through the real hub application on SQLite and PostgreSQL: one sale through each
channel (a platform order picked up, a vend, a self-checkout sale, a locker) moves the
store's stock once, and every fake platform listing the barcode ends up showing the new
quantity, told in signed calls, never an older quantity after a newer one."""

from __future__ import annotations

import asyncio
import itertools
import random
from pathlib import Path

from tests.cloud.stock.stock_hub import COLA, WATER, StockHub, event, stock_hub
from tests.support.platforms import PLATFORMS, FakeOrder

BASE = "/api/v1/stores/demo-001"
STORE = "demo-001"


def is_subsequence(sent: list[int], history: list[int]) -> bool:
    it = iter(history)
    return all(any(q == h for h in it) for q in sent)


async def all_show(hub: StockHub, sku: str, qty: int, within_s: float = 10.0) -> None:
    await asyncio.gather(*(fake.wait_for_stock(sku, qty, within_s) for fake in hub.fakes.values()))


async def setup_product(hub: StockHub, barcode: str, sku: str, name: str) -> None:
    product = {"barcode": barcode, "name": name, "price": 3.5, "cost": 2.1, "shelf": "A1"}
    status, body = await hub.call("POST", BASE + "/catalog", {"products": [product]})
    assert status == 200 and body == {"upserted": 1, "changed": 1}, body
    skus = [{"platform": n, "sku": sku, "upc": barcode, "name": name} for n in PLATFORMS]
    status, body = await hub.call("POST", BASE + "/skus", {"skus": skus})
    assert status == 200 and body["unmatched"] == [], body


async def test_one_sale_through_each_channel_moves_stock_once_everywhere(
    tmp_path: Path, db_url: str
) -> None:
    async with stock_hub(tmp_path, db_url) as hub:
        await setup_product(hub, COLA, "sku-cola", "可口可乐 330ml")
        restock = {"delta": 20, "reason": "restock", "key": "delivery-1"}
        status, body = await hub.call("POST", f"{BASE}/stock/{COLA}", restock)
        assert status == 200 and body["qty"] == 20 and not body["duplicate"], body
        status, body = await hub.call("POST", f"{BASE}/stock/{COLA}", restock)
        assert body == {"duplicate": True, "qty": 20}
        await all_show(hub, "sku-cola", 20)

        # 1. A Meituan order (2 colas, 1 bag of chips) picked up by a courier; the
        # agent's pickup.completed arrives twice.
        status, _ = await hub.fakes["meituan"].push_order(hub.url, FakeOrder("5001"))
        assert status == 200
        pickup = event(1, "pickup.completed", {"order": "meituan-5001", "courier": "c-7"})
        assert (await hub.post_events([pickup]))["accepted"] == 1
        assert (await hub.post_events([pickup]))["duplicates"] == 1
        await all_show(hub, "sku-cola", 18)

        # 2-4. The vending machine, self-checkout and a locker each sell one; every
        # batch is sent twice, as an agent may after a lost answer.
        sales = [
            ("vend", [event(2, "vend.completed", {"machine": "vending-1", "slot": 3})]),
            ("sale", [event(4, "sale.completed", {"channel": "checkout", "items": []})]),
            ("locker", [event(6, "locker.opened", {"locker": "locker-1", "slot": 2})]),
        ]
        qty = 18
        for n, (reason, others) in enumerate(sales):
            qty -= 1
            change = {"barcode": COLA, "delta": -1, "reason": reason, "qty_after": qty}
            batch = [event(10 + n, "stock.changed", change), *others]
            await hub.post_events(batch)
            assert (await hub.post_events(batch))["accepted"] == 0
            await all_show(hub, "sku-cola", qty)

        ledger = hub.stock.ledger
        assert await ledger.quantity(STORE, COLA) == 15
        history = list(reversed(await ledger.entries(STORE, COLA)))
        assert [(e.reason, e.delta) for e in history] == [
            ("restock", 20),
            ("pickup", -2),
            ("vend", -1),
            ("sale", -1),
            ("locker", -1),
        ]
        assert history[1].source == f"order:meituan-5001:pickup:{COLA}"
        # The order's chips were booked by their barcode; no platform lists them (their
        # SKU, learnt from the order, is unmatched and listed for the owner).
        assert await ledger.quantity(STORE, "6920000000017") == -1
        status, body = await hub.call("GET", BASE + "/skus")
        assert [(s["platform"], s["sku"]) for s in body["unmatched"]] == [("meituan", "sku-chips")]

        for fake in hub.fakes.values():
            calls = fake.calls_of("update_stock")
            assert calls and all(c.signature_ok for c in calls), fake.name
            sent = fake.stock_calls_of("sku-cola")
            assert sent[-1] == 15 and is_subsequence(sent, [20, 18, 17, 16, 15]), (fake.name, sent)
        # The fakes have the calls a moment before the hub has recorded their answers.
        want = {(name, 15, False) for name in PLATFORMS}
        for _ in range(100):
            status, body = await hub.call("GET", BASE + "/stock-push")
            seen = {(p["platform"], p["pushed_qty"], p["pending"]) for p in body["push"]}
            if seen == want:
                break
            await asyncio.sleep(0.05)
        assert seen == want


async def test_store_dispensed_orders_refunds_and_restore_move_stock_once(
    tmp_path: Path, db_url: str
) -> None:
    async with stock_hub(tmp_path, db_url) as hub:
        await setup_product(hub, COLA, "sku-cola", "可口可乐 330ml")
        ledger = hub.stock.ledger
        await ledger.record(STORE, COLA, 10, "restock", "delivery:1")
        meituan = hub.fakes["meituan"]
        colas = [FakeOrder("5002").items[0]]  # two colas

        # A paid order a locker dispensed: the agent's own stock.changed names the
        # order, so the pickup that follows takes nothing more.
        await meituan.push_order(hub.url, FakeOrder("5002", items=colas))
        dispensed = {"barcode": COLA, "delta": -2, "reason": "locker", "order": "meituan-5002"}
        done = {"order": "meituan-5002", "courier": None, "channel": "locker"}
        await hub.post_events(
            [event(1, "stock.changed", dispensed), event(2, "pickup.completed", done)]
        )
        await all_show(hub, "sku-cola", 8)
        assert await ledger.quantity(STORE, COLA) == 8

        # A courier's pickup, then the platform refunds it: the goods left, nothing moves.
        await meituan.push_order(hub.url, FakeOrder("5003", items=colas))
        await hub.post_events([event(3, "pickup.completed", {"order": "meituan-5003"})])
        await all_show(hub, "sku-cola", 6)
        # A cancelled order never moved stock.
        await meituan.push_order(hub.url, FakeOrder("5004", items=colas))
        await meituan.push_cancel(hub.url, "5004")
        await meituan.push_refund(hub.url, "5003")
        assert (await hub.orders.get(STORE, "meituan-5003")).refunded_at is not None  # type: ignore[union-attr]
        assert await ledger.quantity(STORE, COLA) == 6

        # The customer brought the refunded colas back: restored once.
        path = BASE + "/orders/meituan-5003/restore-stock"
        status, body = await hub.call("POST", path)
        assert status == 200, body
        assert [(e["reason"], e["delta"]) for e in body["restored"]] == [("refund_restore", 2)]
        status, body = await hub.call("POST", path)
        assert status == 409 and "restored already" in body["error"]["message"]
        # The locker's order, returned without a refund.
        status, body = await hub.call("POST", BASE + "/orders/meituan-5002/restore-stock")
        assert [(e["reason"], e["delta"]) for e in body["restored"]] == [("restore", 2)]
        status, body = await hub.call("POST", BASE + "/orders/meituan-5004/restore-stock")
        assert status == 409 and "cancelled" in body["error"]["message"]
        await all_show(hub, "sku-cola", 10)
        assert await ledger.quantity(STORE, COLA) == 10


async def test_a_burst_of_1000_changes_ends_with_the_last_quantity_everywhere(
    tmp_path: Path, db_url: str
) -> None:
    async with stock_hub(tmp_path, db_url) as hub:
        await setup_product(hub, WATER, "sku-water", "矿泉水 550ml")
        ledger = hub.stock.ledger
        await ledger.record(STORE, WATER, 5000, "restock", "delivery:1")
        # Two platforms refuse a few calls on the way: retried, never out of order.
        hub.fakes["jddj"].fail_next("update_stock", 3)
        hub.fakes["douyin"].fail_next("update_stock", 2)
        rng = random.Random(5)
        deltas = [-rng.randint(1, 3) for _ in range(1000)]

        async def stream(k: int) -> None:
            for i in range(100):
                n = k * 100 + i
                await ledger.record(STORE, WATER, deltas[n], "sale", f"event:burst-{n}")

        await asyncio.gather(*(stream(k) for k in range(10)))
        final = 5000 + sum(deltas)
        assert await ledger.quantity(STORE, WATER) == final
        await all_show(hub, "sku-water", final, within_s=30)
        # Every quantity booked, newest last (stock only goes down here).
        booked = [
            e.qty_after
            for e in sorted(await ledger.entries(STORE, WATER, 2000), key=lambda e: e.version)
        ]
        assert booked[-1] == final and len(booked) == 1001
        for fake in hub.fakes.values():
            sent = fake.stock_calls_of("sku-water")
            assert all(a > b for a, b in itertools.pairwise(sent)), (fake.name, sent)
            assert is_subsequence(sent, booked) and sent[-1] == final
            assert len(sent) < 200, f"{fake.name}: {len(sent)} calls: not debounced"
        assert len(hub.fakes["jddj"].calls_of("update_stock")) >= 4  # 3 refused, retried
        await asyncio.wait_for(hub.stock.push.idle(), 5)
        state = await hub.stock.push.state(STORE)
        assert all(s["pushed_qty"] == final and not s["pending"] and not s["error"] for s in state)


async def test_a_failing_platform_shows_its_reason_and_catches_up(
    tmp_path: Path, db_url: str
) -> None:
    async with stock_hub(tmp_path, db_url) as hub:
        await setup_product(hub, COLA, "sku-cola", "可口可乐 330ml")
        hub.stock.push.retry_base_s = hub.stock.push.retry_max_s = 1.0
        failures: list[tuple[str, str, int]] = []
        failed = asyncio.Event()

        async def heard(store: str, platform: str, skus: list[str], error: str, n: int) -> None:
            failures.append((platform, error, n))
            failed.set()

        hub.stock.push.on_failure(heard)
        hub.fakes["eleme"].fail_next("update_stock", 2)
        await hub.stock.ledger.record(STORE, COLA, 7, "restock", "delivery:1")
        await hub.fakes["meituan"].wait_for_stock("sku-cola", 7)
        # Wait for the first failure to be on record.
        await asyncio.wait_for(failed.wait(), 5)
        await asyncio.wait_for(hub.stock.push.idle(), 5)  # all but eleme's retry done
        state = {s["platform"]: s for s in await hub.stock.push.state(STORE)}
        assert state["eleme"]["pending"] and "busy" in state["eleme"]["error"], state["eleme"]
        assert state["eleme"]["attempts"] >= 1 and state["meituan"]["pushed_qty"] == 7
        await hub.fakes["eleme"].wait_for_stock("sku-cola", 7, within_s=10)
        assert [f[0] for f in failures] == ["eleme", "eleme"]
        await asyncio.wait_for(hub.stock.push.idle(), 5)
        state = {s["platform"]: s for s in await hub.stock.push.state(STORE)}
        assert state["eleme"] == state["eleme"] | {"pending": False, "error": None, "attempts": 0}
