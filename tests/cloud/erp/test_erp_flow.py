"""The ERP sync end to end, on SQLite and PostgreSQL: hub happenings become ERP documents
that reach fake ERPs on loopback (which check every signature), once, whatever the
ERP's outages; the ERP's stock, where it is right, sets the hub's ledger."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cloud.db.engine import Database
from cloud.erp.base import StockScope
from cloud.erp.sync import ErpSync
from cloud.orders.model import StoredOrder
from cloud.stock.ledger import StockLedger
from tests.cloud.erp.erp_env import (
    BREAD,
    ERP_STOCK_STORE,
    JST_STORE,
    MILK,
    WDT_STORE,
    Env,
    erp_env,
    make_clients,
    make_outbox,
)


@pytest.fixture
async def env(tmp_path: Path, db_url: str) -> AsyncIterator[Env]:
    async with erp_env(tmp_path, db_url) as e:
        yield e


def all_signed(env: Env) -> None:
    assert env.wdt.calls and all(c.signature_ok for c in env.wdt.calls)
    assert all(c.signature_ok for c in env.jst.calls)


async def test_a_picked_up_meituan_order_is_one_trade_with_its_fees_as_expenses(
    env: Env,
) -> None:
    await env.picked_up("1001")
    await env.drain()
    all_signed(env)
    assert env.wdt.trade_pushes == ["meituan-1001"]
    trade = env.wdt.trades["meituan-1001"]
    assert trade["shop_no"] == "wdt-shop-1"
    assert (trade["trade_status"], trade["pay_status"], trade["delivery_term"]) == (30, 2, 1)
    assert trade["paid"] == "22.00" and trade["post_amount"] == "0.00"
    assert trade["receiver_address"] == "北京 北京市 海淀区 花园路1号"
    lines = [(o["spec_no"], o["num"], o["price"], o["goods_name"]) for o in trade["order_list"]]
    assert lines == [(MILK, 2, "6.50", "牛奶 Milk"), (BREAD, 1, "9.00", "面包 Bread")]
    assert len({o["oid"] for o in trade["order_list"]}) == 2
    # Commission and delivery fee: other expenses of the order, money out.
    fees = {
        k: (p["order_no"], p["out_amount"], p["in_amount"]) for k, p in env.wdt.payments.items()
    }
    assert fees == {
        "meituan-1001:commission": ("meituan-1001", "1.80", "0.00"),
        "meituan-1001:delivery_fee": ("meituan-1001", "3.00", "0.00"),
    }
    assert await env.outbox.counts() == {"done": 2}


async def test_a_refund_is_a_refund_order_and_reverses_the_fees(env: Env) -> None:
    await env.picked_up("1002")
    await env.drain()
    await env.refunded("1002")
    await env.drain()
    all_signed(env)
    refund = env.wdt.refunds["meituan-1002:refund"]
    assert refund["tid"] == "meituan-1002"
    assert (refund["type"], refund["status"], refund["refund_fee"]) == (4, 5, "22.00")
    assert [o["num"] for o in refund["order_list"]] == [2, 1]
    reversed_fees = {
        k: (p["in_amount"], p["out_amount"]) for k, p in env.wdt.payments.items() if "reversal" in k
    }
    assert reversed_fees == {
        "meituan-1002:commission:reversal": ("1.80", "0.00"),
        "meituan-1002:delivery_fee:reversal": ("3.00", "0.00"),
    }
    # A refund heard again queues nothing new.
    await env.sync.on_order_change(await _order(env, "meituan-1002"), "refunded")
    assert (await env.outbox.counts()) == {"done": 4}


async def _order(env: Env, order_id: str) -> StoredOrder:
    found = await env.orders.get(WDT_STORE, order_id)
    assert found is not None
    return found


async def test_erp_down_for_a_day_then_up_everything_arrives_once(env: Env) -> None:
    await env.wdt.down("503")
    for n in range(3):
        await env.picked_up(f"20{n}")
    await env.sale_event(WDT_STORE, "s-1")
    await env.ledger.record(WDT_STORE, MILK, 24, "restock", "delivery:1")
    # 12 hours answering 503, then 12 hours not even listening; the hub keeps trying.
    for hour in range(24):
        if hour == 12:
            await env.wdt.down("refuse")
        if hour == 6:
            await env.refunded("201")
        for _ in range(4):
            env.clock.advance(900)
            await env.outbox.run_due()
    failures = await env.outbox.failures(WDT_STORE)
    keys = {f["key"] for f in failures}
    assert {"wdt:trade:meituan-200", "wdt:trade:demo-001-checkout-s-1"} <= keys
    assert all(f["status"] == "pending" for f in failures)
    assert any("not reached" in (f["error"] or "") for f in failures)
    tried = max(f["attempts"] for f in failures)
    assert tried >= 90  # every retry_max (15 min) through the day
    await env.ledger.record(WDT_STORE, MILK, -1, "sale", "event:late")

    await env.wdt.up()
    env.clock.advance(900)
    await env.drain(rounds=20)
    all_signed(env)
    assert Counter(env.wdt.trade_pushes) == {
        "meituan-200": 1,
        "meituan-201": 1,
        "meituan-202": 1,
        "demo-001-checkout-s-1": 1,
    }
    assert set(env.wdt.refunds) == {"meituan-201:refund"}
    assert len(env.wdt.payments) == 3 * 2 + 2
    assert env.wdt.stock[MILK][0] == 23  # the latest count, not the one queued first
    assert len(env.wdt.stock_takes) == 1
    assert await env.outbox.failures() == []
    counts = await env.outbox.counts()
    assert set(counts) == {"done"}
    # Nothing is sent again, however long the hub keeps running.
    before = len(env.wdt.calls)
    for _ in range(5):
        env.clock.advance(3600)
        assert await env.outbox.run_due() == 0
    assert len(env.wdt.calls) == before


async def test_a_refusal_is_kept_and_given_up_after_the_limit(env: Env) -> None:
    # A refund for a trade the ERP never had: 旺店通 refuses it (code 5040) every time.
    await env.outbox.enqueue(
        erp="wdt",
        store=WDT_STORE,
        kind="refund_order",
        key="wdt:refund:ghost",
        ref="ghost",
        payload={"refund_id": "ghost:refund", "order_id": "ghost", "shop": "wdt-shop-1",
                 "at": "2025-01-02T03:04:05.000000Z", "lines": [], "amount": 100},
    )  # fmt: skip
    for _ in range(10):
        await env.outbox.run_due()
        env.clock.advance(1000)
    (failure,) = await env.outbox.failures()
    assert failure["status"] == "failed" and failure["attempts"] == 5
    assert "5040" in failure["error"] and "原始单不存在" in failure["error"]


async def test_the_erp_is_right_about_stock_and_sets_the_ledger(env: Env) -> None:
    await env.add_catalog(ERP_STOCK_STORE, (MILK, "牛奶", 650), (BREAD, "面包", 900))
    env.wdt.stock = {MILK: (12, "2025-01-02 10:00:00"), BREAD: (0, "2025-01-02 10:00:00")}
    assert await env.sync.poll_stock() == 1  # milk 0 -> 12; bread was 0 already
    assert await env.ledger.quantities(ERP_STOCK_STORE) == {MILK: 12, BREAD: 0}
    (entry, *_) = await env.ledger.entries(ERP_STOCK_STORE, MILK)
    assert (entry.reason, entry.source) == ("erp", f"erp:wdt:{MILK}:2025-01-02 10:00:00")
    # The same ERP version again books nothing; a sale here is not uploaded (no echo).
    assert await env.sync.poll_stock() == 0
    await env.ledger.record(ERP_STOCK_STORE, MILK, -1, "sale", "event:x")
    assert await env.ledger.quantity(ERP_STOCK_STORE, MILK) == 11
    env.wdt.stock[MILK] = (7, "2025-01-02 11:00:00")
    assert await env.sync.poll_stock() == 1
    assert await env.ledger.quantity(ERP_STOCK_STORE, MILK) == 7
    await env.drain()
    assert env.wdt.calls_to("stock_sync_by_pd.php") == []
    assert all(c.params.get("warehouse_no") is None for c in env.wdt.calls_to("stock_query.php"))


async def test_hub_stock_changes_are_uploaded_latest_first_never_older(env: Env) -> None:
    for n in range(1, 31):
        await env.ledger.record(WDT_STORE, BREAD, 1, "restock", f"restock:{n}")
    await env.ledger.record(WDT_STORE, MILK, 5, "restock", "restock:milk")
    rows = [r for r in await env.outbox.rows(WDT_STORE) if r["kind"] == "stock_upload"]
    assert len(rows) == 2  # one pending row per item, however many changes
    await env.drain()
    assert {b: q for b, (q, _) in env.wdt.stock.items()} == {BREAD: 30, MILK: 5}
    (take,) = env.wdt.stock_takes.values()
    assert sorted(line["spec_no"] for line in take) == sorted([BREAD, MILK])
    (call,) = env.wdt.calls_to("stock_sync_by_pd.php")
    assert call.params["warehouse_no"] == "wh-1"


async def test_a_store_sale_is_a_sales_order_and_a_dispensed_platform_order_is_not(
    env: Env,
) -> None:
    await env.sale_event(WDT_STORE, "s-9", channel="vend", total=6.5)
    await env.sale_event(WDT_STORE, "s-9", channel="vend", total=6.5)  # heard twice
    await env.picked_up("3001")
    await env.sale_event(WDT_STORE, "s-10", channel="locker", order="meituan-3001")
    await env.drain()
    assert Counter(env.wdt.trade_pushes) == {"demo-001-vend-s-9": 1, "meituan-3001": 1}
    trade = env.wdt.trades["demo-001-vend-s-9"]
    assert trade["paid"] == "6.50" and trade["order_list"][0]["spec_no"] == MILK


async def test_jst_gets_orders_and_stock_and_shows_fees_as_unsupported(env: Env) -> None:
    await env.picked_up("4001", store=JST_STORE)
    await env.ledger.record(JST_STORE, MILK, 9, "restock", "restock:jst")
    await env.drain()
    assert all(c.signature_ok for c in env.jst.calls) and env.jst.calls
    order = env.jst.orders["meituan-4001"]
    assert order["shop_id"] == 10001 and order["pay_amount"] == "22.00"
    assert [(i["sku_id"], i["qty"]) for i in order["items"]] == [(MILK, 2), (BREAD, 1)]
    assert env.jst.stock[MILK][0] == 9
    (take,) = env.jst.stock_takes.values()
    assert take["wms_co_id"] == 20001 and take["type"] == "check"
    (unsupported,) = await env.outbox.failures(JST_STORE)
    assert unsupported["kind"] == "expenses" and unsupported["status"] == "unsupported"
    await env.refunded("4001", store=JST_STORE)
    await env.drain()
    assert set(env.jst.aftersales) == {"meituan-4001:refund"}
    env.jst.stock[BREAD] = (3, "2025-01-03 09:00:00")
    levels = await env.clients["jst"].query_stock(StockScope("10001", "", (BREAD,)))
    assert [(s.barcode, s.qty) for s in levels] == [(BREAD, 3)]


async def test_two_hubs_on_one_database_send_each_document_once(env: Env, db_url: str) -> None:
    for n in range(20):
        await env.sale_event(WDT_STORE, f"s-{n}")
    other_db = await Database.open(db_url)
    other_clients = make_clients(env.cfg)
    try:
        other = make_outbox(other_db, other_clients, env.clock)
        other_sync = ErpSync(env.cfg, other_db, other, StockLedger(other_db), other_clients)
        other.stock_reader = other_sync.stock_reader
        await asyncio.gather(env.outbox.run_due(), other.run_due())
        await env.drain()
    finally:
        for client in other_clients.values():
            await client.close()
        await other_db.close()
    assert Counter(env.wdt.trade_pushes) == {f"demo-001-checkout-s-{n}": 1 for n in range(20)}
