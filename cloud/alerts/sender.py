"""Each robot's queue, sent within DingTalk's limit: merged when crowded, never dropped.

    sender = AlertSender(db, {"owner": DingTalkRobot(webhook, secret)}, per_minute=20)
    await sender.start()     # sends whatever is pending now and whenever woken
    sender.wake()            # an alert was queued
    await sender.stop()

Per robot, at most `per_minute` messages go out in any window of WINDOW_S seconds,
counted from the `alert_messages` table so that hubs sharing a database count together
(and the window is a little longer than DingTalk's minute, for the time requests take).
While less than half of the minute's messages are used, alerts go one per message
(merged only when more wait than that half has room for); past half, everything waiting
goes as one digest message (as much as DingTalk takes in one message, the rest in the
next), one message every window/limit seconds, so a burst of any size reaches the owner
within the minute, merged, and a later incident still finds room. An alert stays
pending until a message holding it was taken; a failed post is recorded, the robot
backs off (longer after errcode 130101, DingTalk's "send too fast"), and the same
alerts go again, merged with newer ones.

One hub at a time sends for a robot: it takes the robot's lease (a conditional UPDATE of
its `alert_robots` row with an expiry), so no transaction is held across the HTTP call.
A hub that dies mid-post leaves the lease to expire; its alerts are then sent again
(at least once, rather than at most once).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Mapping
from typing import Protocol

from sqlalchemy import func, or_, select, update

from cloud.alerts.dingtalk import DingTalkError
from cloud.alerts.incidents import Clock, utc_now
from cloud.alerts.messages import Queued, digest, fit_digest, single
from cloud.alerts.tables import alert_messages, alert_queue, alert_robots
from cloud.db.engine import Database
from cloud.db.times import utc_text
from cloud.worker import PollingWorker

log = logging.getLogger("cloud.alerts")

WINDOW_S = 61.0  # DingTalk counts 20 per minute; a second more for requests in flight
LEASE_S = 30.0  # longer than a post may take (10 s timeout)
POLL_S = 30.0
STOP_GRACE_S = 2.0
RETRY_BASE_S = 5.0
RETRY_MAX_S = 300.0
THROTTLED_BASE_S = 60.0  # after 130101; DingTalk may throttle a robot for 10 minutes
THROTTLED_MAX_S = 600.0
READ_LIMIT = 1000


class RobotClient(Protocol):
    async def send_markdown(self, title: str, text: str) -> None: ...


def hub_name() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


class AlertSender(PollingWorker):
    """stop() lets a post under way finish (up to STOP_GRACE_S). One cut off is sent again
    once its lease runs out."""

    task_name = "alert-sender"
    logger = log
    failure = "alerts: cannot send the queued alerts"
    stop_grace_s = STOP_GRACE_S

    def __init__(
        self,
        db: Database,
        robots: Mapping[str, RobotClient],
        *,
        per_minute: int = 20,
        window_s: float = WINDOW_S,
        clock: Clock = utc_now,
        hub: str = "",
        lease_s: float = LEASE_S,
        poll_s: float = POLL_S,
    ) -> None:
        super().__init__(db, poll_s=poll_s, clock=clock)
        self.robots = dict(robots)
        self.per_minute = per_minute
        self.window = dt.timedelta(seconds=window_s)
        self.clock = clock
        self.hub = (hub or hub_name())[:100]
        self.lease = dt.timedelta(seconds=lease_s)
        self._lock = asyncio.Lock()  # one round at a time in this process

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        await self.ensure_robots()
        await self._warn_orphans()
        if self.robots:
            await super().start()

    async def ensure_robots(self) -> None:
        if not self.robots:
            return
        epoch = utc_text(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        rows = [
            {
                "id": robot_id,
                "lease_owner": "",
                "lease_until": epoch,
                "paused_until": epoch,
                "failures": 0,
                "updated_at": utc_text(self.clock()),
            }
            for robot_id in self.robots
        ]
        async with self.db.write() as conn:
            await conn.execute(
                self.db.insert(alert_robots).on_conflict_do_nothing(
                    index_elements=[alert_robots.c.id]
                ),
                rows,
            )

    async def _warn_orphans(self) -> None:
        query = (
            select(alert_queue.c.robot_id, func.count())
            .where(alert_queue.c.status == "pending")
            .group_by(alert_queue.c.robot_id)
        )
        async with self.db.read() as conn:
            for robot_id, count in (await conn.execute(query)).all():
                if robot_id not in self.robots:
                    log.warning(
                        "%d alerts wait for DingTalk robot %r, which is no longer configured "
                        "(or has no webhook): they are kept, not sent",
                        count,
                        robot_id,
                    )

    async def run_round(self) -> float:
        wait = await self.run_once()
        return self.poll_s if wait is None else min(self.poll_s, max(0.05, wait))

    # --- sending -------------------------------------------------------------------------

    async def run_once(self) -> float | None:
        """Send what each robot may send now; returns the seconds until something more
        could go (a window or back-off ending), or None when nothing waits."""
        async with self._lock:
            waits = [await self._robot_round(robot_id) for robot_id in self.robots]
        pending = [w for w in waits if w is not None]
        return min(pending) if pending else None

    async def _robot_round(self, robot_id: str) -> float | None:
        if not await self._claim(robot_id):
            return 1.0  # another hub sends for this robot now
        try:
            while True:
                now = self.clock()
                paused, sent_times, pending, total = await self._state(robot_id, now)
                if paused > now:
                    return (paused - now).total_seconds()
                if not pending:
                    return None
                sent = len(sent_times)
                if sent >= self.per_minute:
                    return (min(sent_times) + self.window - now).total_seconds()
                half = max(1, self.per_minute // 2)
                if sent >= half:
                    # Crowded: the rest of the minute goes in paced digests, so a burst
                    # still reaches the owner within the minute, merged.
                    ready = max(sent_times) + self.window / self.per_minute
                    if ready > now:
                        return (ready - now).total_seconds()
                    alone = total == 1
                else:
                    alone = total <= half - sent
                await self._send(robot_id, pending, total, alone)
                await self._claim(robot_id)  # renew
        finally:
            await self._release(robot_id)

    async def _send(self, robot_id: str, pending: list[Queued], total: int, alone: bool) -> None:
        batch = pending[:1] if alone else pending[: fit_digest(pending)]
        if len(batch) == 1:
            title, text = single(batch[0])
        else:
            title, text = digest(batch, more=total - len(batch))
        now = utc_text(self.clock())
        ids = [a.id for a in batch]
        async with self.db.write() as conn:
            message_id = (
                await conn.execute(
                    alert_messages.insert()
                    .values(
                        robot_id=robot_id,
                        at=now,
                        alerts=len(batch),
                        title=title[:500],
                        status="sending",
                        hub=self.hub,
                    )
                    .returning(alert_messages.c.id)
                )
            ).scalar_one()
        error: DingTalkError | None = None
        try:
            await self.robots[robot_id].send_markdown(title, text)
        except DingTalkError as e:
            error = e
        except Exception as e:  # a bug must not stop the queue: recorded like a refusal
            log.exception("alerts: posting to robot %s failed unexpectedly", robot_id)
            error = DingTalkError(-1, type(e).__name__)
        done = utc_text(self.clock())
        async with self.db.write() as conn:
            if error is None:
                await conn.execute(
                    update(alert_messages)
                    .where(alert_messages.c.id == message_id)
                    .values(status="sent")
                )
                await conn.execute(
                    update(alert_queue)
                    .where(alert_queue.c.id.in_(ids), alert_queue.c.status == "pending")
                    .values(
                        status="sent",
                        message_id=message_id,
                        sent_at=done,
                        attempts=alert_queue.c.attempts + 1,
                    )
                )
                await conn.execute(
                    update(alert_robots)
                    .where(alert_robots.c.id == robot_id)
                    .values(failures=0, last_error=None, last_sent_at=done, updated_at=done)
                )
                log.info(
                    "alerts: robot %s took a message of %d alert(s)",
                    robot_id,
                    len(batch),
                    extra={"robot": robot_id, "alerts": len(batch)},
                )
                return
            failures = (
                await conn.execute(
                    select(alert_robots.c.failures).where(alert_robots.c.id == robot_id)
                )
            ).scalar_one() + 1
            delay = _backoff(failures, error.rate_limited)
            reason = str(error)[:2000]
            await conn.execute(
                update(alert_messages)
                .where(alert_messages.c.id == message_id)
                .values(status="failed", errcode=error.errcode, error=reason)
            )
            await conn.execute(
                update(alert_queue)
                .where(alert_queue.c.id.in_(ids), alert_queue.c.status == "pending")
                .values(attempts=alert_queue.c.attempts + 1, last_error=reason)
            )
            await conn.execute(
                update(alert_robots)
                .where(alert_robots.c.id == robot_id)
                .values(
                    failures=failures,
                    last_error=reason,
                    paused_until=utc_text(self.clock() + dt.timedelta(seconds=delay)),
                    updated_at=done,
                )
            )
        log.warning(
            "alerts: robot %s did not take a message of %d alert(s): %s; trying again in %.0f s",
            robot_id,
            len(batch),
            error,
            delay,
            extra={"robot": robot_id, "errcode": error.errcode},
        )

    async def _state(
        self, robot_id: str, now: dt.datetime
    ) -> tuple[dt.datetime, list[dt.datetime], list[Queued], int]:
        since = utc_text(now - self.window)
        async with self.db.read() as conn:
            paused = (
                await conn.execute(
                    select(alert_robots.c.paused_until).where(alert_robots.c.id == robot_id)
                )
            ).scalar_one()
            sent = (
                await conn.execute(
                    select(alert_messages.c.at).where(
                        alert_messages.c.robot_id == robot_id, alert_messages.c.at > since
                    )
                )
            ).scalars()
            sent_times = [_parse(t) for t in sent]
            waiting = alert_queue.c.robot_id == robot_id, alert_queue.c.status == "pending"
            rows = (
                await conn.execute(
                    select(
                        alert_queue.c.id,
                        alert_queue.c.title,
                        alert_queue.c.text,
                        alert_queue.c.created_at,
                    )
                    .where(*waiting)
                    .order_by(alert_queue.c.id)
                    .limit(READ_LIMIT)
                )
            ).all()
            total = len(rows)
            if total == READ_LIMIT:
                total = (await conn.execute(select(func.count()).where(*waiting))).scalar_one()
        pending = [Queued(r.id, r.title, r.text, r.created_at) for r in rows]
        return _parse(paused), sent_times, pending, total

    async def _claim(self, robot_id: str) -> bool:
        now = self.clock()
        async with self.db.write() as conn:
            result = await conn.execute(
                update(alert_robots)
                .where(
                    alert_robots.c.id == robot_id,
                    or_(
                        alert_robots.c.lease_until <= utc_text(now),
                        alert_robots.c.lease_owner == self.hub,
                    ),
                )
                .values(lease_owner=self.hub, lease_until=utc_text(now + self.lease))
            )
        return result.rowcount == 1

    async def _release(self, robot_id: str) -> None:
        with contextlib.suppress(Exception):  # an unreleased lease just runs out
            async with self.db.write() as conn:
                await conn.execute(
                    update(alert_robots)
                    .where(alert_robots.c.id == robot_id, alert_robots.c.lease_owner == self.hub)
                    .values(lease_until=utc_text(self.clock()))
                )


def _backoff(failures: int, throttled: bool) -> float:
    exponent = min(failures - 1, 20)
    if throttled:
        return min(THROTTLED_MAX_S, THROTTLED_BASE_S * 2**exponent)
    return min(RETRY_MAX_S, RETRY_BASE_S * 2**exponent)
