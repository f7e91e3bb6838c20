"""Owner notifications, run with the hub application.

    attach_alerts(app)        # cloud/root.py: after create_app, before the runner

The event-ingest hook and the stock ledger's listener page at once; the time-based
triggers are checked every `alerts.check_seconds`; each robot's queue is sent by an
AlertSender. Other parts of the hub report their own failing pushes with

    await notify_push_failed(app, system="wdt", store="demo-001", error=..., attempts=n)
    await notify_push_ok(app, system="wdt", store="demo-001")

(no-ops on a hub without alerts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from aiohttp import web

from cloud.alerts.dingtalk import DingTalkRobot
from cloud.alerts.incidents import Clock, Incidents, Routing, utc_now
from cloud.alerts.sender import AlertSender, RobotClient
from cloud.alerts.triggers import Presence, Triggers
from cloud.config import HubConfig
from cloud.db.engine import Database
from cloud.envelope import Envelope

log = logging.getLogger("cloud.alerts")


class AlertCenter:
    def __init__(
        self,
        cfg: HubConfig,
        db: Database,
        *,
        clock: Clock = utc_now,
        robots: Mapping[str, RobotClient] | None = None,
        hub: str = "",
        presence: Presence | None = None,
        window_s: float | None = None,
    ) -> None:
        self.cfg = cfg
        routing = Routing(cfg.alerts, {m.id: m.stores for m in cfg.merchants})
        self.book = Incidents(db, routing, clock)
        if robots is None:
            robots = {
                r.id: DingTalkRobot(r.webhook, r.secret) for r in cfg.alerts.robots if r.enabled
            }
        self._own_clients = [c for c in robots.values() if isinstance(c, DingTalkRobot)]
        options = {} if window_s is None else {"window_s": window_s}
        self.sender = AlertSender(
            db, robots, per_minute=cfg.alerts.per_minute, clock=clock, hub=hub, **options
        )
        self.triggers = Triggers(cfg, self.book, db, queued=self.sender.wake, presence=presence)
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        await self.sender.start()
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.get_running_loop().create_task(self._checks(), name="alert-checks")
        robots = ", ".join(self.sender.robots) or "none (alerts are recorded, not sent)"
        log.info("alerts: robots %s; triggers %s", robots, ", ".join(self.cfg.alerts.triggers))

    async def stop(self) -> None:
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await asyncio.gather(task, return_exceptions=True)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.sender.stop()
        for client in self._own_clients:
            await client.close()

    async def check(self) -> None:
        """The time-based triggers, now."""
        await self.triggers.check()

    async def on_events(self, store: str, events: list[Envelope]) -> None:
        await self.triggers.on_events(store, events)

    async def on_stock_change(
        self, store: str, barcode: str, qty_after: int, entry: object
    ) -> None:
        await self.triggers.on_stock_change(store, barcode, qty_after, entry)

    async def _checks(self) -> None:
        every = self.cfg.alerts.check_seconds
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every):
                    await self._stopping.wait()
            if self._stopping.is_set():
                return
            await self.check()


ALERTS = web.AppKey("alerts", AlertCenter)


async def notify_push_failed(
    app: web.Application,
    *,
    system: str,
    store: str,
    error: str,
    attempts: int,
    what: str = "",
) -> None:
    """A push to `system` (a platform or ERP name) for `store` failed `attempts` times in
    a row: pages once `alerts.push_failed_attempts` is reached, until notify_push_ok."""
    center = app.get(ALERTS)
    if center is not None:
        await center.triggers.push_failed(system, store, error, attempts=attempts, what=what)


async def notify_push_ok(app: web.Application, *, system: str, store: str) -> None:
    center = app.get(ALERTS)
    if center is not None:
        await center.triggers.push_ok(system, store)
