"""Each robot's queue against a fake DingTalk that enforces 20 messages a minute: merged
when crowded, retried when refused, never lost, never sent twice by two hubs."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import select

from cloud.alerts.incidents import Incidents, Routing
from cloud.alerts.messages import Alert
from cloud.alerts.sender import AlertSender
from cloud.alerts.tables import alert_messages, alert_queue, alert_robots
from cloud.alerts.worker import AlertCenter
from cloud.db.engine import Database
from tests.cloud.alerts.alert_fixtures import STORE, Clock, alert_center, alert_config
from tests.cloud.orders.order_fixtures import fresh_database
from tests.support.dingtalk import FakeDingTalk


def alert(i: int) -> Alert:
    return Alert(
        f"test:{i}", "device", STORE, f"设备离线 dev-{i:03d}", f"设备 **dev-{i:03d}** 离线"
    )


HEADING = re.compile(r"^#{3,4} 设备离线 (dev-\d{3})$", re.MULTILINE)


def carried(ding: FakeDingTalk) -> list[str]:
    """The alert numbers found in the messages taken, in order, repeats kept."""
    # a single alert's heading is "### title", a digest's entries "#### title"
    return [name for text in ding.texts() for name in HEADING.findall(text)]


async def queue_rows(center: AlertCenter) -> list[dict]:
    async with center.book.db.read() as conn:
        return [dict(r) for r in (await conn.execute(select(alert_queue))).mappings()]


async def test_a_burst_of_100_is_at_most_20_messages_with_every_alert(
    db_url: str, tmp_path: Path
) -> None:
    clock = Clock()
    async with FakeDingTalk(clock=clock.timestamp) as ding:
        cfg = alert_config(tmp_path, ding)
        async with alert_center(db_url, cfg, clock) as (center, _db):
            sending = asyncio.create_task(_keep_sending(center))
            for i in range(100):
                assert await center.book.open(alert(i))
                center.sender.wake()
                if i % 10 == 0:
                    await asyncio.sleep(0.01)  # the sender runs while alerts come in
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
            await drain(center, clock)
            rows = await queue_rows(center)
        assert len(ding.messages) <= 20
        assert ding.messages[-1].at - ding.messages[0].at < 60  # all within the minute
        assert ding.refused == []  # never over DingTalk's limit, so never refused
        names = carried(ding)
        assert sorted(names) == [f"dev-{i:03d}" for i in range(100)]  # all, each once
        assert any("合并" in m.title for m in ding.messages)
        assert {r["status"] for r in rows} == {"sent"}


async def drain(center: AlertCenter, clock: Clock) -> None:
    """Run the sender until nothing waits, moving the clock as it asks."""
    while (wait := await center.sender.run_once()) is not None:
        clock.advance(seconds=wait)


async def _keep_sending(center: AlertCenter) -> None:
    while True:
        await center.sender.run_once()
        await asyncio.sleep(0.005)


async def test_past_half_the_minute_alerts_are_paced_and_merged(
    db_url: str, tmp_path: Path
) -> None:
    clock = Clock()
    async with FakeDingTalk(clock=clock.timestamp) as ding:
        cfg = alert_config(tmp_path, ding, per_minute=4)
        async with alert_center(db_url, cfg, clock) as (center, _db):
            for i in range(2):
                await center.book.open(alert(i))
                assert await center.sender.run_once() is None
            assert len(ding.messages) == 2  # one each while there is room
            for i in range(2, 7):
                await center.book.open(alert(i))
            wait = await center.sender.run_once()
            assert wait is not None and 15 <= wait <= 15.5  # the window / 4 messages
            assert len(ding.messages) == 2  # they wait, and more may join them
            await center.book.open(alert(7))
            clock.advance(seconds=wait)
            assert await center.sender.run_once() is None
            assert len(ding.messages) == 3
            assert ding.messages[-1].title == "6 条提醒（合并发送）"
            await center.book.open(alert(8))
            await drain(center, clock)
            await center.book.open(alert(9))  # the minute's 4 are used: waits for the window
            wait = await center.sender.run_once()
            assert wait is not None and wait > 15.5
            await drain(center, clock)
        assert len(ding.messages) == 5 and ding.refused == []
        assert carried(ding) == [f"dev-{i:03d}" for i in range(10)]


async def test_a_failed_post_is_retried_visible_and_nothing_is_lost(
    db_url: str, tmp_path: Path
) -> None:
    clock = Clock()
    async with FakeDingTalk(clock=clock.timestamp) as ding:
        cfg = alert_config(tmp_path, ding)
        async with alert_center(db_url, cfg, clock) as (center, db):
            ding.fail_next(2, status=503)
            await center.book.open(alert(1))
            wait = await center.sender.run_once()
            assert wait is not None and wait > 0  # backing off
            rows = await queue_rows(center)
            assert rows[0]["status"] == "pending" and rows[0]["attempts"] == 1
            assert "HTTP 503" in rows[0]["last_error"]
            async with db.read() as conn:
                robot = (await conn.execute(select(alert_robots))).mappings().one()
                messages = (await conn.execute(select(alert_messages))).mappings().all()
            assert robot["failures"] == 1 and "HTTP 503" in robot["last_error"]
            assert [m["status"] for m in messages] == ["failed"]
            await center.book.open(alert(2))
            assert await center.sender.run_once() == wait  # still backing off: nothing sent
            clock.advance(seconds=wait)
            second = await center.sender.run_once()  # fails again: longer back-off
            assert second is not None and second > wait
            clock.advance(seconds=second)
            assert await center.sender.run_once() is None
            rows = await queue_rows(center)
        assert {r["status"] for r in rows} == {"sent"}
        assert sorted(carried(ding)) == ["dev-001", "dev-002"]
        assert ding.requests == 4  # two refused, then each alert alone (room again)


async def test_errcode_130101_backs_off_for_a_minute_or_more(db_url: str, tmp_path: Path) -> None:
    clock = Clock()
    # DingTalk stricter than we think (someone else posts with the same robot)
    async with FakeDingTalk(clock=clock.timestamp, per_minute=2) as ding:
        cfg = alert_config(tmp_path, ding)
        async with alert_center(db_url, cfg, clock) as (center, _db):
            for i in range(3):
                await center.book.open(alert(i))
                await center.sender.run_once()
            assert ding.refused and ding.refused[-1][0] == 130101
            await center.book.open(alert(3))
            wait = await center.sender.run_once()
            assert wait is not None and wait >= 59
            assert len(ding.messages) == 2
            clock.advance(seconds=wait)
            assert await center.sender.run_once() is None
        assert sorted(carried(ding)) == [f"dev-{i:03d}" for i in range(4)]


async def test_two_hubs_on_one_database_share_the_limit_and_send_each_alert_once(
    db_url: str, tmp_path: Path
) -> None:
    clock = Clock()
    async with FakeDingTalk(clock=clock.timestamp) as ding:
        cfg = alert_config(tmp_path, ding)
        # each hub has its own connections: a second Database on the same URL
        async with fresh_database(db_url, cfg) as db1, second_handle(db_url) as db2:
            hubs = [
                AlertCenter(cfg, db, clock=clock, hub=name)
                for db, name in ((db1, "hub-1"), (db2, "hub-2"))
            ]
            for h in hubs:
                await h.sender.ensure_robots()

            async def hub_loop(center: AlertCenter, first: int) -> None:
                for i in range(first, 60, 2):
                    await center.book.open(alert(i))
                    await center.sender.run_once()

            await asyncio.gather(hub_loop(hubs[0], 0), hub_loop(hubs[1], 1))
            while True:  # both keep going, the clock moving as they ask
                waits = await asyncio.gather(*(h.sender.run_once() for h in hubs))
                if all(w is None for w in waits):
                    break
                clock.advance(seconds=min(w for w in waits if w is not None))
            for h in hubs:
                for client in h._own_clients:
                    await client.close()
        assert len(ding.messages) <= 20 and ding.refused == []
        assert sorted(carried(ding)) == [f"dev-{i:03d}" for i in range(60)]


async def test_two_hubs_opening_one_incident_page_once(db_url: str, tmp_path: Path) -> None:
    cfg = alert_config(tmp_path, None)
    async with fresh_database(db_url, cfg) as db1, second_handle(db_url) as db2:
        books = [Incidents(db, Routing(cfg.alerts, {})) for db in (db1, db2) for _ in range(3)]
        for round_ in range(5):
            key_alert = alert(round_)
            opened = await asyncio.gather(*(b.open(key_alert) for b in books))
            assert opened.count(True) == 1
            resolved = await asyncio.gather(*(b.resolve(key_alert.key, "ok", "ok") for b in books))
            assert resolved.count(True) == 1


@contextlib.asynccontextmanager
async def second_handle(db_url: str) -> AsyncIterator[Database]:
    db = await Database.open(db_url)
    try:
        yield db
    finally:
        await db.close()


async def test_a_sender_without_robots_keeps_alerts_recorded(db_url: str, tmp_path: Path) -> None:
    cfg = alert_config(tmp_path, None)
    async with fresh_database(db_url, cfg) as db:
        book = Incidents(db, Routing(cfg.alerts, {}))
        assert await book.open(alert(1))
        assert not await book.open(alert(1))
        assert await book.is_open("test:1")
        sender = AlertSender(db, {})
        assert await sender.run_once() is None
