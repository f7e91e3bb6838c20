"""The agents' events in the database: stored once per (store, id), listed back by seq."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from cloud.db.engine import Database
from cloud.db.tables import events, rejections
from cloud.db.times import now_text
from cloud.envelope import Envelope


async def insert_events(db: Database, store_id: str, batch: Sequence[Envelope]) -> int:
    """Store the events of `batch` not stored yet, in one transaction; returns how many
    were new (the rest, already there or repeated in the batch, are duplicates)."""
    return len(await insert_new_events(db, store_id, batch))


async def insert_new_events(db: Database, store_id: str, batch: Sequence[Envelope]) -> list[str]:
    """As insert_events, but returns the ids of the events that were new."""
    if not batch:
        return []
    received = now_text()
    rows = [
        {
            "store_id": store_id,
            "id": e.id,
            "seq": e.seq,
            "ts": e.ts,
            "type": e.type,
            "envelope": e.json,
            "received_at": received,
        }
        for e in batch
    ]
    # One multi-row INSERT per page of rows (SQLAlchemy's "insertmanyvalues"); RETURNING
    # gives back only the rows really inserted, on both databases.
    statement = (
        db.insert(events)
        .on_conflict_do_nothing(index_elements=[events.c.store_id, events.c.id])
        .returning(events.c.id)
    )
    async with db.write() as conn:
        result = await conn.execute(statement, rows)
        return list(result.scalars())


async def list_events(db: Database, store_id: str, after_seq: int, limit: int) -> list[str]:
    """Up to `limit` events with seq > `after_seq`, in seq order, as the agent sent them."""
    query = (
        select(events.c.envelope)
        .where(events.c.store_id == store_id, events.c.seq > after_seq)
        .order_by(events.c.seq, events.c.id)
        .limit(limit)
    )
    async with db.read() as conn:
        return list((await conn.execute(query)).scalars())


async def record_rejection(
    db: Database, store_id: str, endpoint: str, status: int, reason: str, body_bytes: int
) -> None:
    async with db.write() as conn:
        await conn.execute(
            rejections.insert().values(
                store_id=store_id,
                at=now_text(),
                endpoint=endpoint,
                status=status,
                reason=reason[:2000],
                body_bytes=body_bytes,
            )
        )
