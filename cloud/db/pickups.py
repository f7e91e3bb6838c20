"""pickup.completed events waiting to be told to the order service, with retries.

A job is written when its event is first stored (a duplicate event adds none: the key
is the event's). Whoever takes a due job first moves its `next_at` forward, which is a
lease: another hub sharing the database sees it is no longer due and leaves it alone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update

from cloud.db.engine import Database
from cloud.db.tables import pickup_jobs
from cloud.db.times import now_text, utc_text


@dataclass(frozen=True, slots=True)
class PickupJob:
    store: str
    event_id: str
    order_id: str
    courier: str
    attempts: int
    next_at: str


def _later(seconds: float) -> str:
    return utc_text(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds))


async def add_jobs(db: Database, store: str, jobs: list[tuple[str, str, str]]) -> None:
    """Jobs for (event id, order id, courier), due now; existing ones are kept."""
    if not jobs:
        return
    now = now_text()
    rows = [
        {
            "store_id": store,
            "event_id": event_id,
            "order_id": order_id,
            "courier": courier[:200],
            "created_at": now,
            "next_at": now,
            "attempts": 0,
        }
        for event_id, order_id, courier in jobs
    ]
    statement = db.insert(pickup_jobs).on_conflict_do_nothing(
        index_elements=[pickup_jobs.c.store_id, pickup_jobs.c.event_id]
    )
    async with db.write() as conn:
        await conn.execute(statement, rows)


async def claim_due(db: Database, *, lease_s: float, limit: int = 50) -> list[PickupJob]:
    """Due jobs, each leased to the caller for `lease_s` seconds."""
    now = now_text()
    query = (
        select(pickup_jobs)
        .where(pickup_jobs.c.done_at.is_(None), pickup_jobs.c.next_at <= now)
        .order_by(pickup_jobs.c.next_at)
        .limit(limit)
    )
    async with db.read() as conn:
        rows = list((await conn.execute(query)).mappings())
    claimed: list[PickupJob] = []
    until = _later(lease_s)
    for r in rows:
        if await _lease(db, r["store_id"], r["event_id"], r["next_at"], until):
            claimed.append(
                PickupJob(
                    r["store_id"], r["event_id"], r["order_id"], r["courier"], r["attempts"], until
                )
            )
    return claimed


async def claim(db: Database, store: str, event_id: str, *, lease_s: float) -> PickupJob | None:
    """This job, leased to the caller, if it is due and not done."""
    query = select(pickup_jobs).where(
        pickup_jobs.c.store_id == store,
        pickup_jobs.c.event_id == event_id,
        pickup_jobs.c.done_at.is_(None),
        pickup_jobs.c.next_at <= now_text(),
    )
    async with db.read() as conn:
        r = (await conn.execute(query)).mappings().first()
    until = _later(lease_s)
    if r is None or not await _lease(db, store, event_id, r["next_at"], until):
        return None
    return PickupJob(
        r["store_id"], r["event_id"], r["order_id"], r["courier"], r["attempts"], until
    )


async def _lease(db: Database, store: str, event_id: str, seen_next_at: str, until: str) -> bool:
    statement = (
        update(pickup_jobs)
        .where(
            pickup_jobs.c.store_id == store,
            pickup_jobs.c.event_id == event_id,
            pickup_jobs.c.next_at == seen_next_at,
            pickup_jobs.c.done_at.is_(None),
        )
        .values(next_at=until)
    )
    async with db.write() as conn:
        return (await conn.execute(statement)).rowcount == 1


async def finish(db: Database, job: PickupJob, error: str | None = None) -> None:
    statement = (
        update(pickup_jobs)
        .where(pickup_jobs.c.store_id == job.store, pickup_jobs.c.event_id == job.event_id)
        .values(done_at=now_text(), attempts=job.attempts + 1, last_error=error)
    )
    async with db.write() as conn:
        await conn.execute(statement)


async def retry_later(db: Database, job: PickupJob, error: str, delay_s: float) -> None:
    statement = (
        update(pickup_jobs)
        .where(pickup_jobs.c.store_id == job.store, pickup_jobs.c.event_id == job.event_id)
        .values(next_at=_later(delay_s), attempts=job.attempts + 1, last_error=error[:2000])
    )
    async with db.write() as conn:
        await conn.execute(statement)
