"""What the ERP feature reports about itself: documents failing to reach the ERP."""

from __future__ import annotations

from sqlalchemy import select

from cloud.db.engine import Database
from cloud.db.tables import ERP_TABLES
from cloud.failing_work import Trouble

(erp_outbox,) = ERP_TABLES


async def failing_docs(db: Database, *, at_least: int, since: str, limit: int) -> list[Trouble]:
    d = erp_outbox.c
    query = (
        select(d.id, d.store_id, d.erp, d.kind, d.status, d.attempts, d.error)
        .where(
            ((d.status == "pending") & (d.attempts >= at_least))
            | ((d.status == "failed") & (d.updated_at >= since))
        )
        .limit(limit)
    )
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    return [
        Trouble(
            "erp",
            r.store_id,
            r.erp,
            r.attempts,
            r.error or "",
            gave_up=r.status != "pending",
            ident=r.id,
            kind=r.kind,
        )
        for r in rows
    ]
