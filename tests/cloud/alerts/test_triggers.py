"""Each trigger pages once per incident, and says when it is over; time is the test's
clock, never a sleep. Real collaborators: the stock ledger and catalog, the order
service, the platform call queue, the ERP outbox table, the store status log."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from sqlalchemy import insert, update

from cloud.alerts.worker import AlertCenter, notify_push_failed, notify_push_ok
from cloud.db import presence
from cloud.db.tables import ERP_TABLES, platform_calls
from cloud.db.times import utc_text
from cloud.envelope import parse_batch
from cloud.orders.calls import queue_call
from cloud.orders.service import OrderService
from cloud.platforms.base import NormalizedOrder, OrderItem, PlatformPush
from cloud.stock.catalog import Catalog
from cloud.stock.ledger import StockLedger
from cloud.stock.product import Product
from tests.cloud.alerts.alert_fixtures import STORE, Clock, alert_center, alert_config
from tests.support.dingtalk import FakeDingTalk

BARCODE = "6901234567892"


class Events:
    def __init__(self) -> None:
        self.seq = 0

    def batch(self, *events: tuple[str, dict[str, Any]]) -> list[Any]:
        out = []
        for type_, data in events:
            self.seq += 1
            out.append(
                {
                    "id": f"{STORE}-{self.seq:08d}",
                    "store": STORE,
                    "seq": self.seq,
                    "ts": "2025-01-31T08:00:00Z",
                    "type": type_,
                    "data": data,
                }
            )
        return parse_batch(json.dumps({"events": out}).encode(), STORE)


async def sent(center: AlertCenter, ding: FakeDingTalk, clock: Clock) -> list[str]:
    """Send what is queued; the titles DingTalk took since the last call."""
    before = len(ding.messages)
    while (wait := await center.sender.run_once()) is not None:
        clock.advance(seconds=wait)
    return [m.title for m in ding.messages[before:]]


async def test_door_held_open_pages_once_and_resolves(db_url: str, tmp_path: Path) -> None:
    clock, events = Clock(), Events()
    async with FakeDingTalk(clock=clock.timestamp) as ding:
        cfg = alert_config(tmp_path, ding)
        async with alert_center(db_url, cfg, clock) as (center, _db):
            held = ("door.held_open", {"door": "front", "seconds": 60})
            await center.on_events(STORE, events.batch(held))
            await center.on_events(STORE, events.batch(held))  # still the same incident
            assert await sent(center, ding, clock) == ["🚪 门未关：demo-001 · front"]
            assert "超过 60 秒" in ding.messages[-1].text
            closed = ("door.closed", {"door": "front", "open_seconds": 95.2})
            await center.on_events(STORE, events.batch(closed, closed))
            assert await sent(center, ding, clock) == ["✅ 门已关：demo-001 · front"]
            assert "共打开 95 秒" in ding.messages[-1].text
            await center.on_events(STORE, events.batch(held))  # a new incident
            assert await sent(center, ding, clock) == ["🚪 门未关：demo-001 · front"]


async def test_devices_printers_vends_and_lockers(db_url: str, tmp_path: Path) -> None:
    clock, events = Clock(), Events()
    async with FakeDingTalk(clock=clock.timestamp) as ding:
        cfg = alert_config(tmp_path, ding)
        async with alert_center(db_url, cfg, clock) as (center, _db):
            offline = ("device.offline", {"device": "scanner-front", "reason": "no port"})
            paper = ("printer.error", {"printer": "printer-1", "error": "paper_out", "job": None})
            await center.on_events(STORE, events.batch(offline, paper, offline, paper))
            assert await sent(center, ding, clock) == [
                "⚠️ 设备离线：demo-001 · scanner-front",
                "🖨️ 打印机故障：demo-001 · printer-1",
            ]
            assert "缺纸" in ding.messages[-1].text
            vend = {
                "machine": "vending-1",
                "slot": 3,
                "barcode": BARCODE,
                "fault": "jammed",
                "order": None,
                "refund": {"amount": 3.5, "order": None, "payment": "p-1"},
            }
            batch = events.batch(
                ("vend.failed", vend),
                ("locker.failed", {"locker": "locker-1", "slot": 4, "order": "o-1", "reason": "x"}),
                ("device.online", {"device": "scanner-front"}),
                ("print.done", {"printer": "printer-1", "job": "j", "kind": "text"}),
            )
            await center.on_events(STORE, batch)
            await center.on_events(STORE, batch[:2])  # the same events again: told once
            titles = await sent(center, ding, clock)
            assert titles == [
                "⚠️ 出货失败：demo-001 · vending-1",
                "⚠️ 开柜失败：demo-001 · locker-1",
                "✅ 设备恢复：demo-001 · scanner-front",
                "✅ 打印机恢复：demo-001 · printer-1",
            ]
            assert "卡货" in ding.messages[-4].text and "¥3.50" in ding.messages[-4].text


async def test_low_stock_from_the_ledger(db_url: str, tmp_path: Path) -> None:
    clock = Clock()
    async with FakeDingTalk(clock=clock.timestamp) as ding:
        cfg = alert_config(tmp_path, ding)
        async with alert_center(db_url, cfg, clock) as (center, db):
            await Catalog(db).upsert(
                STORE, [Product(BARCODE, "可乐 330ml", 350, shelf="A3", low_stock=3)]
            )
            ledger = StockLedger(db)
            ledger.on_change(center.on_stock_change)
            await ledger.record(STORE, BARCODE, 10, "restock", "test:1")
            await ledger.record(STORE, BARCODE, -6, "sale", "test:2")  # 4: above
            assert await sent(center, ding, clock) == []
            await ledger.record(STORE, BARCODE, -1, "sale", "test:3")  # 3: at the threshold
            await ledger.record(STORE, BARCODE, -2, "sale", "test:4")  # 1: still low
            assert await sent(center, ding, clock) == ["📦 库存不足：demo-001 · 可乐 330ml"]
            assert "库存 **3**" in ding.messages[-1].text and "A3" in ding.messages[-1].text
            await ledger.record(STORE, BARCODE, 12, "restock", "test:5")
            await ledger.record(STORE, BARCODE, -1, "sale", "test:6")
            assert await sent(center, ding, clock) == ["✅ 已补货：demo-001 · 可乐 330ml"]
            # an item without a threshold never pages
            await ledger.record(STORE, "6900000000001", 0, "adjust", "test:7")
            assert await sent(center, ding, clock) == []


async def test_store_offline_for_n_minutes(db_url: str, tmp_path: Path) -> None:
    clock = Clock()
    async with FakeDingTalk(clock=clock.timestamp) as ding:
        cfg = alert_config(tmp_path, ding, store_offline_minutes=10)
        async with alert_center(db_url, cfg, clock) as (center, db):
            await presence.log_status(db, STORE, {"online": True}, hub="h")
            await presence.log_status(db, STORE, {"online": False}, hub="h")
            clock.advance(minutes=9)
            await center.check()
            assert await sent(center, ding, clock) == []
            clock.advance(minutes=2)
            await center.check()
            await center.check()
            assert await sent(center, ding, clock) == ["📴 门店离线：demo-001"]
            # the status row is stamped a moment after the test clock started
            assert re.search("已离线 1[01] 分钟", ding.messages[-1].text)
            await presence.log_status(db, STORE, {"online": True}, hub="h")
            await center.check()
            await center.check()
            assert await sent(center, ding, clock) == ["✅ 门店已恢复在线：demo-001"]


async def test_the_brokers_retained_status_counts_when_nothing_was_logged(
    db_url: str, tmp_path: Path
) -> None:
    clock = Clock()
    async with FakeDingTalk(clock=clock.timestamp) as ding:
        cfg = alert_config(tmp_path, ding, store_offline_minutes=5)
        online = {STORE: False}
        async with alert_center(db_url, cfg, clock, presence=online.get) as (center, _db):
            await center.check()  # first seen offline now
            clock.advance(minutes=6)
            await center.check()
            assert await sent(center, ding, clock) == ["📴 门店离线：demo-001"]
            online[STORE] = True
            await center.check()
            assert await sent(center, ding, clock) == ["✅ 门店已恢复在线：demo-001"]


async def test_an_order_not_picked_up_in_n_minutes(db_url: str, tmp_path: Path) -> None:
    clock = Clock()
    async with FakeDingTalk(clock=clock.timestamp) as ding:
        cfg = alert_config(tmp_path, ding, pickup_minutes=30)
        async with alert_center(db_url, cfg, clock) as (center, db):
            service = OrderService(cfg, db, {})
            order = NormalizedOrder(
                platform="meituan",
                platform_order_id="27001",
                shop_id=STORE,
                day_seq=7,
                items=(OrderItem(name="可乐 330ml", qty=2, price=350, barcode=BARCODE),),
                total=700,
            )
            stored = await service.ingest(PlatformPush("meituan", "new", order=order), "test")
            assert stored is not None
            clock.advance(minutes=29)
            await center.check()
            assert await sent(center, ding, clock) == []
            clock.advance(minutes=2)
            await center.check()
            await center.check()
            assert await sent(center, ding, clock) == ["⏰ 订单超时未取：demo-001 · 美团 #7"]
            assert "可乐 330ml×2" in ding.messages[-1].text
            await service.mark_picked_up(STORE, stored.id, courier="c-1", source="test")
            await center.check()
            assert await sent(center, ding, clock) == ["✅ 订单已取货：demo-001 · #7"]
            await service.close()


async def test_failing_platform_calls_and_erp_documents(db_url: str, tmp_path: Path) -> None:
    clock = Clock()
    async with FakeDingTalk(clock=clock.timestamp) as ding:
        cfg = alert_config(tmp_path, ding, push_failed_attempts=3)
        (erp_outbox,) = ERP_TABLES
        async with alert_center(db_url, cfg, clock) as (center, db):
            now = utc_text(dt.datetime.now(dt.UTC))
            async with db.write() as conn:
                ids = [
                    await queue_call(
                        conn,
                        platform="meituan",
                        store=STORE,
                        order_id=None,
                        kind="update_stock",
                        args={"n": n},
                    )
                    for n in range(2)
                ]
                await conn.execute(
                    insert(erp_outbox).values(
                        key="wdt:trade:1",
                        erp="wdt",
                        store_id=STORE,
                        kind="sales_order",
                        ref="o-1",
                        payload="{}",
                        status="pending",
                        attempts=0,
                        refusals=0,
                        next_try=now,
                        created_at=now,
                        updated_at=now,
                    )
                )

            async def fail(attempts: int) -> None:
                async with db.write() as conn:
                    await conn.execute(
                        update(platform_calls)
                        .where(platform_calls.c.id.in_(ids))
                        .values(attempts=attempts, error="HTTP 502 from meituan")
                    )
                    await conn.execute(
                        update(erp_outbox).values(attempts=attempts, error="wdt: 系统繁忙")
                    )

            await fail(2)
            await center.check()
            assert await sent(center, ding, clock) == []
            await fail(3)
            await center.check()
            await fail(4)
            await center.check()
            assert sorted(await sent(center, ding, clock)) == [
                "🔁 ERP 同步失败：demo-001 · 旺店通",
                "🔁 平台调用失败：demo-001 · 美团",
            ]
            assert any("HTTP 502" in t for t in ding.texts())
            async with db.write() as conn:
                await conn.execute(update(platform_calls).values(status="done", error=None))
                await conn.execute(update(erp_outbox).values(status="failed"))  # given up
            await center.check()
            await center.check()
            assert sorted(await sent(center, ding, clock)) == [
                "✅ 同步已恢复：demo-001 · 旺店通",
                "✅ 同步已恢复：demo-001 · 美团",
                "❌ 同步已放弃：demo-001 · 旺店通",
            ]


async def test_pushes_reported_by_their_owner(tmp_path: Path) -> None:
    from aiohttp import web

    clock = Clock()
    async with FakeDingTalk(clock=clock.timestamp) as ding:
        cfg = alert_config(tmp_path, ding, push_failed_attempts=3)
        async with alert_center(f"sqlite:///{tmp_path / 'hub.db'}", cfg, clock) as (center, _):
            from cloud.alerts.worker import ALERTS

            app = web.Application()
            app[ALERTS] = center
            for attempts in (1, 2, 3, 4):
                await notify_push_failed(
                    app, system="jst", store=STORE, error="聚水潭: 签名错误", attempts=attempts
                )
            assert await sent(center, ding, clock) == ["🔁 推送失败：demo-001 · 聚水潭"]
            await notify_push_ok(app, system="jst", store=STORE)
            await notify_push_ok(app, system="jst", store=STORE)
            assert await sent(center, ding, clock) == ["✅ 推送已恢复：demo-001 · 聚水潭"]
        await notify_push_failed(
            web.Application(), system="jst", store=STORE, error="x", attempts=9
        )


async def test_triggers_that_are_off_and_robots_that_filter(db_url: str, tmp_path: Path) -> None:
    clock, events = Clock(), Events()
    async with FakeDingTalk(clock=clock.timestamp) as ding:
        cfg = alert_config(tmp_path, ding, triggers=["device"])
        async with alert_center(db_url, cfg, clock) as (center, _db):
            await center.on_events(
                STORE,
                events.batch(
                    ("door.held_open", {"door": "front", "seconds": 60}),
                    ("device.offline", {"device": "lockbus-1"}),
                ),
            )
            assert await sent(center, ding, clock) == ["⚠️ 设备离线：demo-001 · lockbus-1"]
        other = alert_config(tmp_path, ding)
        robot = other.alerts.robots[0].model_copy(update={"stores": ["demo-002"]})
        other = other.model_copy(
            update={"alerts": other.alerts.model_copy(update={"robots": [robot]})}
        )
        async with alert_center(db_url, other, clock) as (center, _db):
            await center.on_events(STORE, events.batch(("device.offline", {"device": "printer-1"})))
            assert await sent(center, ding, clock) == []  # the robot serves demo-002 only


async def test_guessing_at_a_door_and_unanswered_opens(db_url: str, tmp_path: Path) -> None:
    """The agent's access.locked_out / access.burst (door_guessing) and access.uncertain
    (device): each told once, however often the store resends it."""
    clock, events = Clock(), Events()
    async with FakeDingTalk(clock=clock.timestamp) as ding:
        cfg = alert_config(tmp_path, ding)
        async with alert_center(db_url, cfg, clock) as (center, _db):
            codes = {
                "door": "front",
                "kind": "pickup_code",
                "pause_seconds": 120,
                "until": "2025-01-31T08:02:00.000Z",
                "pause": 2,
                "wrong": 6,
            }
            answers = {
                "door": "front",
                "kind": "entry_answer",
                "sub": "c-9",
                "jti": "j",
                "wrong": 3,
            }
            burst = {"door": "front", "lines": 300, "seconds": 0.004}
            uncertain = {
                "door": "front",
                "reason": "no_reply",
                "error": "lock board 1 did not answer OPEN 1.1 after 3 tries",
                "method": "code",
                "pass_used": False,
                "orders_pending": ["mt-1001"],
            }
            batch = events.batch(
                ("access.burst", burst),
                ("access.locked_out", codes),
                ("access.locked_out", answers),
                ("access.uncertain", uncertain),
            )
            await center.on_events(STORE, batch)
            await center.on_events(STORE, batch)  # resent: told once
            assert await sent(center, ding, clock) == [
                "⚠️ 异常扫码：demo-001 · front",
                "🔐 取件码连续输错：demo-001 · front",
                "🔐 入店问题连续答错：demo-001 · front",
                "⚠️ 开门无应答：demo-001 · front",
            ]
            texts = [m.text for m in ding.messages[-4:]]
            assert "300 行" in texts[0]
            assert "连续输错 6 次" in texts[1] and "2 分钟" in texts[1] and "16:02:00" in texts[1]
            assert "3 次" in texts[2] and "c-9" in texts[2]
            assert "mt-1001" in texts[3]
        quiet = alert_config(tmp_path, ding, triggers=["device"])
        async with alert_center(db_url, quiet, clock) as (center, _db):
            await center.on_events(STORE, events.batch(("access.locked_out", codes)))
            assert await sent(center, ding, clock) == []  # door_guessing is off
