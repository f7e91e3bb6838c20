"""Answers given on the customer entry page, as a record for operators (the counts that
pause guessers are cloud/limits), and whether a visitor got in before."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select

from cloud.db.engine import Database
from cloud.db.tables import entry_attempts
from cloud.db.times import utc_text

# rate_limited: the visitor or address was paused; door_paused: the door was.
Outcome = Literal["granted", "wrong_answer", "rate_limited", "door_paused"]


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


async def granted_since(db: Database, store: str, client_hash: str, since: dt.datetime) -> bool:
    """Whether this visitor got an entry pass at `store` since `since` (a regular)."""
    query = (
        select(entry_attempts.c.id)
        .where(
            entry_attempts.c.store_id == store,
            entry_attempts.c.client_hash == client_hash,
            entry_attempts.c.at > utc_text(since),
            entry_attempts.c.outcome == "granted",
        )
        .limit(1)
    )
    async with db.read() as conn:
        return (await conn.execute(query)).first() is not None


async def list_attempts(db: Database, store: str) -> list[dict[str, object]]:
    """Every attempt at `store`, oldest first (for operators and tests)."""
    query = (
        select(entry_attempts)
        .where(entry_attempts.c.store_id == store)
        .order_by(entry_attempts.c.id)
    )
    async with db.read() as conn:
        return [dict(row._mapping) for row in await conn.execute(query)]
