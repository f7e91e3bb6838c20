"""What the ERP feature reports about itself: documents failing to reach the ERP."""

from __future__ import annotations

from cloud.db.engine import Database
from cloud.db.tables import ERP_TABLES
from cloud.failing_work import Trouble, retrying_or_given_up

(erp_outbox,) = ERP_TABLES


async def failing_docs(db: Database, *, at_least: int, since: str, limit: int) -> list[Trouble]:
    return await retrying_or_given_up(
        db, erp_outbox, "erp", "erp", at_least=at_least, since=since, limit=limit
    )
