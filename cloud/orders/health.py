"""What the order feature reports about itself: platform calls failing, and orders
waiting long for their courier (the alerts ask; they do not read these tables)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from cloud.db.engine import Database
from cloud.db.tables import orders, platform_calls
from cloud.failing_work import Trouble, retrying_or_given_up


async def failing_calls(db: Database, *, at_least: int, since: str, limit: int) -> list[Trouble]:
    """Calls still retrying after `at_least` tries, and those given up on since `since`."""
    return await retrying_or_given_up(
        db, platform_calls, "platform", "platform", at_least=at_least, since=since, limit=limit
    )


@dataclass(frozen=True, slots=True)
class Waiting:
    id: str
    store: str
    platform: str
    day_seq: int
    items: list[dict[str, Any]]
    created_at: str


async def waiting_since(db: Database, *, before: str, after: str, limit: int) -> list[Waiting]:
    """Pending orders that came in between `after` and `before`, oldest first."""
    o = orders.c
    query = (
        select(o.id, o.store_id, o.platform, o.day_seq, o["items"], o.created_at)
        .where(o.status == "pending", o.created_at <= before, o.created_at >= after)
        .order_by(o.created_at)
        .limit(limit)
    )
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    return [Waiting(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5]) for r in rows]


async def statuses(db: Database, ids: Iterable[str]) -> dict[str, tuple[str, str, int]]:
    """order id -> (store, status, day_seq)."""
    o = orders.c
    query = select(o.id, o.store_id, o.status, o.day_seq).where(o.id.in_(list(ids)))
    async with db.read() as conn:
        return {r.id: (r.store_id, r.status, r.day_seq) for r in (await conn.execute(query))}
