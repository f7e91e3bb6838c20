"""Claiming due rows of a work table (`id`, `status`, `next_try` columns) with a lease.

A pending row whose next_try has come is claimed by moving its next_try ahead to the
lease's end: a hub that dies while working on it leaves it to be claimed again when the
lease runs out, and no other hub sees it as due meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, Table, select, update

from cloud.db.engine import Database


async def claim_due(
    db: Database,
    table: Table,
    *,
    now: str,
    lease_until: str,
    order_by: Sequence[ColumnElement[Any]],
    limit: int,
) -> list[RowMapping]:
    """The pending rows due at `now` (in `order_by` order, at most `limit`), each leased
    to the caller until `lease_until`; rows another hub claimed first are left out."""
    c = table.c
    query = (
        select(table)
        .where(c.status == "pending", c.next_try <= now)
        .order_by(*order_by)
        .limit(limit)
    )
    if db.dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    out: list[RowMapping] = []
    async with db.write() as conn:
        for row in list((await conn.execute(query)).mappings()):
            # The condition on next_try keeps the claim safe where SKIP LOCKED is not
            # (two hubs on one SQLite file): only one of them moves it.
            claimed = await conn.execute(
                update(table)
                .where(c.id == row["id"], c.next_try == row["next_try"], c.status == "pending")
                .values(next_try=lease_until)
            )
            if claimed.rowcount == 1:
                out.append(row)
    return out
