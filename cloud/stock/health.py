"""What the stock feature reports about itself: platform stock pushes failing."""

from __future__ import annotations

from sqlalchemy import select

from cloud.db.engine import Database
from cloud.failing_work import Trouble
from cloud.stock.tables import stock_push


async def failing_pushes(db: Database, *, at_least: int, limit: int) -> list[Trouble]:
    p = stock_push.c
    query = (
        select(p.store_id, p.platform, p.attempts, p.error)
        .where(p.attempts >= at_least)
        .limit(limit)
    )
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    return [Trouble("stock", r.store_id, r.platform, r.attempts, r.error or "") for r in rows]
