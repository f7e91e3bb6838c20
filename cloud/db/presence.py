"""Stores' status messages (online / offline), logged once per message across hubs."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from cloud.db.engine import Database
from cloud.db.tables import store_status_log
from cloud.db.times import now_text


async def log_status(db: Database, store: str, status: dict[str, Any], *, hub: str) -> None:
    row = {
        "store_id": store,
        "at": now_text(),
        "online": status.get("online") is True,
        "status": json.dumps(status, ensure_ascii=False, separators=(",", ":"))[:4000],
        "hub": hub[:100],
    }
    async with db.write() as conn:
        await conn.execute(store_status_log.insert().values(**row))


async def status_history(db: Database, store: str, limit: int = 100) -> list[dict[str, Any]]:
    """The store's latest status messages, newest first: {at, online, hub}."""
    query = (
        select(store_status_log.c.at, store_status_log.c.online, store_status_log.c.hub)
        .where(store_status_log.c.store_id == store)
        .order_by(store_status_log.c.id.desc())
        .limit(limit)
    )
    async with db.read() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings()]


async def status_count(db: Database, store: str) -> int:
    query = select(func.count()).where(store_status_log.c.store_id == store)
    async with db.read() as conn:
        return int((await conn.execute(query)).scalar_one())
