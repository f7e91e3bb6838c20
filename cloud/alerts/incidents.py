"""Incidents: each thing that went wrong pages once, and once more when it is right again.

    book = Incidents(db, routing, clock)
    await book.open(alert)          # True: newly open, the alert is queued for its robots
    await book.resolve(key, title, text)   # True: it was open, the resolution is queued
    await book.note(alert)          # one-off (a failed vend): queued once per key
    await book.reconcile("pickup_overdue:", current, resolution)   # periodic triggers

Every change is one transaction with the queue rows it causes, and every change is
conditional on the row's state (INSERT ... ON CONFLICT DO NOTHING, UPDATE ... WHERE
state = ...), so hubs sharing one database page an incident once between them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.alerts.messages import Alert
from cloud.alerts.settings import AlertsConfig
from cloud.alerts.tables import alert_incidents, alert_queue
from cloud.db.engine import Database
from cloud.db.times import utc_text

Clock = Callable[[], dt.datetime]
# The keys to resolve -> (title, text) of each resolution message; a key left out is
# resolved with a plain "back to normal".
Resolution = Callable[[Sequence[str]], Awaitable[Mapping[str, tuple[str, str]]]]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Routing:
    """Which robots hear which store's alerts, from `alerts.robots` (enabled ones only)."""

    def __init__(self, alerts: AlertsConfig, merchant_stores: Mapping[str, Iterable[str]]) -> None:
        self._robots: list[tuple[str, frozenset[str] | None]] = []
        self._triggers: dict[str, frozenset[str]] = {}
        for robot in alerts.robots:
            if not robot.enabled:
                continue
            stores: set[str] = set(robot.stores)
            for merchant in robot.merchants:
                stores.update(merchant_stores.get(merchant, ()))
            scope = frozenset(stores) if robot.stores or robot.merchants else None
            self._robots.append((robot.id, scope))
            self._triggers[robot.id] = frozenset(robot.triggers)

    @property
    def robot_ids(self) -> list[str]:
        return [r[0] for r in self._robots]

    def robots_for(self, store: str, kind: str) -> list[str]:
        out = []
        for robot_id, scope in self._robots:
            triggers = self._triggers[robot_id]
            if triggers and kind not in triggers:
                continue
            if scope is None or not store or store in scope:
                out.append(robot_id)
        return out


class Incidents:
    def __init__(self, db: Database, routing: Routing, clock: Clock = utc_now) -> None:
        self.db = db
        self.routing = routing
        self.clock = clock

    def now(self) -> str:
        return utc_text(self.clock())

    async def open(self, alert: Alert) -> bool:
        """Open the incident `alert.key` unless it is open already; True if it opened
        (and so the alert was queued)."""
        now = self.now()
        async with self.db.write() as conn:
            opened = await self._insert(conn, alert, "open", now)
            if not opened:
                result = await conn.execute(
                    update(alert_incidents)
                    .where(
                        alert_incidents.c.key == alert.key, alert_incidents.c.state == "resolved"
                    )
                    .values(
                        state="open",
                        title=alert.title[:500],
                        opened_at=now,
                        resolved_at=None,
                        times=alert_incidents.c.times + 1,
                    )
                )
                opened = result.rowcount == 1
            if opened:
                await self._queue(conn, alert, now)
        return opened

    async def note(self, alert: Alert) -> bool:
        """A one-off alert (nothing to resolve): queued once per key, ever."""
        now = self.now()
        async with self.db.write() as conn:
            noted = await self._insert(conn, alert, "noted", now)
            if noted:
                await self._queue(conn, alert, now)
        return noted

    async def resolve(self, key: str, title: str, text: str) -> bool:
        """Resolve the incident if it is open; True if it was (the message is queued)."""
        now = self.now()
        async with self.db.write() as conn:
            row = (
                await conn.execute(
                    select(alert_incidents.c.kind, alert_incidents.c.store_id).where(
                        alert_incidents.c.key == key, alert_incidents.c.state == "open"
                    )
                )
            ).first()
            if row is None:
                return False
            result = await conn.execute(
                update(alert_incidents)
                .where(alert_incidents.c.key == key, alert_incidents.c.state == "open")
                .values(state="resolved", resolved_at=now)
            )
            if result.rowcount != 1:
                return False
            await self._queue(conn, Alert(key, row.kind, row.store_id, title, text), now)
        return True

    async def is_open(self, key: str) -> bool:
        async with self.db.read() as conn:
            state = (
                await conn.execute(
                    select(alert_incidents.c.state).where(alert_incidents.c.key == key)
                )
            ).scalar()
        return state == "open"

    async def open_keys(self, prefix: str) -> list[str]:
        query = select(alert_incidents.c.key).where(
            alert_incidents.c.key.startswith(prefix, autoescape=True),
            alert_incidents.c.state == "open",
        )
        async with self.db.read() as conn:
            return list((await conn.execute(query)).scalars())

    async def reconcile(
        self, prefix: str, current: Mapping[str, Alert], resolution: Resolution
    ) -> tuple[int, int]:
        """Make the open incidents whose key starts with `prefix` be exactly `current`:
        open what is new, resolve what is gone. Returns (opened, resolved)."""
        already = set(await self.open_keys(prefix))
        opened = 0
        for key, alert in current.items():
            if key not in already and await self.open(alert):
                opened += 1
        gone = sorted(already - set(current))
        resolved = 0
        if gone:
            texts = await resolution(gone)
            for key in gone:
                title, text = texts.get(key, ("已恢复正常", "问题已不再出现。"))
                if await self.resolve(key, title, text):
                    resolved += 1
        return opened, resolved

    async def _insert(self, conn: AsyncConnection, alert: Alert, state: str, now: str) -> bool:
        statement = (
            self.db.insert(alert_incidents)
            .values(
                key=alert.key[:300],
                kind=alert.kind,
                store_id=alert.store,
                state=state,
                title=alert.title[:500],
                opened_at=now,
                resolved_at=None,
                times=1,
            )
            .on_conflict_do_nothing(index_elements=[alert_incidents.c.key])
            .returning(alert_incidents.c.key)
        )
        return (await conn.execute(statement)).first() is not None

    async def _queue(self, conn: AsyncConnection, alert: Alert, now: str) -> None:
        alert = alert.clipped()
        rows = [
            {
                "robot_id": robot_id,
                "incident_key": alert.key[:300],
                "store_id": alert.store,
                "kind": alert.kind,
                "title": alert.title,
                "text": alert.text,
                "created_at": now,
                "status": "pending",
                "attempts": 0,
            }
            for robot_id in self.routing.robots_for(alert.store, alert.kind)
        ]
        if rows:
            await conn.execute(alert_queue.insert(), rows)
