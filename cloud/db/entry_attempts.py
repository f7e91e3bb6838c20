"""Answers given on the customer entry page: recorded, and counted to pause guessers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select

from cloud.db.engine import Database
from cloud.db.tables import entry_attempts
from cloud.db.times import utc_text

Outcome = Literal["granted", "wrong_answer", "rate_limited"]


@dataclass(frozen=True, slots=True)
class Attempt:
    store: str
    door: str
    outcome: Outcome
    client_hash: str
    ip_hash: str
    pass_jti: str | None = None
    unlocked: bool | None = None


async def record_attempt(db: Database, attempt: Attempt, at: dt.datetime) -> None:
    async with db.write() as conn:
        await conn.execute(
            entry_attempts.insert().values(
                store_id=attempt.store,
                door=attempt.door,
                at=utc_text(at),
                ok=attempt.outcome == "granted",
                outcome=attempt.outcome,
                client_hash=attempt.client_hash,
                ip_hash=attempt.ip_hash,
                pass_jti=attempt.pass_jti,
                unlocked=attempt.unlocked,
            )
        )


async def recent_wrong(
    db: Database,
    store: str,
    *,
    by: Literal["client", "ip"],
    key: str,
    since: dt.datetime,
    limit: int,
) -> list[dt.datetime]:
    """When the newest wrong answers at `store` since `since` were given (at most `limit`,
    newest first), by this visitor (`by="client"`) or from this address (`by="ip"`)."""
    column = entry_attempts.c.client_hash if by == "client" else entry_attempts.c.ip_hash
    query = (
        select(entry_attempts.c.at)
        .where(
            entry_attempts.c.store_id == store,
            column == key,
            entry_attempts.c.outcome == "wrong_answer",
            entry_attempts.c.at > utc_text(since),
        )
        .order_by(entry_attempts.c.at.desc())
        .limit(limit)
    )
    async with db.read() as conn:
        return [dt.datetime.fromisoformat(at) for at in (await conn.execute(query)).scalars()]


async def list_attempts(db: Database, store: str) -> list[dict[str, object]]:
    """Every attempt at `store`, oldest first (for operators and tests)."""
    query = (
        select(entry_attempts)
        .where(entry_attempts.c.store_id == store)
        .order_by(entry_attempts.c.id)
    )
    async with db.read() as conn:
        return [dict(row._mapping) for row in await conn.execute(query)]
