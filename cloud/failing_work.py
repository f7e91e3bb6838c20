"""Work the hub owes an outside system that keeps failing: a platform call, a platform
stock push, an ERP document. Each feature reports its own (cloud/orders/health.py,
cloud/stock/health.py, cloud/erp/health.py) from its own tables; the alerts ask them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Table, select

from cloud.db.engine import Database

System = Literal["platform", "stock", "erp"]


@dataclass(frozen=True, slots=True)
class Trouble:
    system: System
    store: str
    target: str  # the platform or ERP name
    attempts: int
    error: str
    gave_up: bool = False  # given up on for good (told once), else still retrying
    ident: int | None = None  # the call's or document's id, for what was given up on
    kind: str = ""  # what the call or document is (confirm_order, purchase_in...)


async def retrying_or_given_up(
    db: Database,
    table: Table,
    system: System,
    target: str,
    *,
    at_least: int,
    since: str,
    limit: int,
) -> list[Trouble]:
    """Rows of an outbox-shaped table (id, store_id, `target`, kind, status, attempts,
    error, updated_at): still pending after `at_least` tries, or failed since `since`."""
    c = table.c
    query = (
        select(c.id, c.store_id, c[target], c.kind, c.status, c.attempts, c.error)
        .where(
            ((c.status == "pending") & (c.attempts >= at_least))
            | ((c.status == "failed") & (c.updated_at >= since))
        )
        .limit(limit)
    )
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    return [
        Trouble(
            system,
            r.store_id,
            r[2],
            r.attempts,
            r.error or "",
            gave_up=r.status != "pending",
            ident=r.id,
            kind=r.kind,
        )
        for r in rows
    ]
