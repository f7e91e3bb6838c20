"""Counts of guesses, kept in the database so that every hub process shares them and a
restart forgets nothing.

    limiter = Limiter(db)
    visitor = Counter(Rule("entry.visitor", limit=5, window_s=600), visitor_id)
    address = Counter(Rule("entry.address", limit=20, window_s=600), bucket)
    taken = await limiter.reserve([visitor, address])   # the decision: counted now
    if isinstance(taken, Refused):
        ...429, Retry-After: taken.retry_after(limiter.now())
    right = await check(...)                             # the slow part, after counting
    if right:
        await limiter.refund(taken)                      # only failures stay counted

`reserve` takes one from each count in one transaction, or none: each is a single
conditional upsert (INSERT ... ON CONFLICT DO UPDATE ... WHERE not full RETURNING), so
concurrent requests, in this process or another hub's, cannot all see room for one
more. A full count refuses until its window ends; a count that fills again right after
its pause (within one base window of its end) gets a window twice as long, up to
`max_window_s`. Counting before checking also keeps an expensive check (scrypt) from
running more often than the limit allows.

For a cheap check on a hot path (a bearer token), `paused` reads whether the caller is
paused before the check and `reserve` counts only a failure: a right answer is then
accepted only while the count is not full, and no more than `limit` failures are
answered as failures per window.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, and_, case, delete, literal, or_, select, update

from cloud.db.engine import Database
from cloud.db.tables import LIMIT_TABLES

guess_limits, limit_keys = LIMIT_TABLES

Clock = Callable[[], float]  # epoch seconds
KEY_NAME = "subjects-v1"
KEEP_MS = 2 * 86400 * 1000  # rows whose window ended this long ago are deleted
PRUNE_EVERY_S = 600


@dataclass(frozen=True, slots=True)
class Rule:
    scope: str  # what is counted, e.g. "entry.visitor"
    limit: int
    window_s: float
    max_window_s: float = 0  # above window_s: windows filled back to back grow to this

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window_s <= 0:
            raise ValueError("a rule needs a limit of at least 1 and a window")


@dataclass(frozen=True, slots=True)
class Counter:
    rule: Rule
    subject: str  # whom: a visitor id, an address bucket, a door; stored hashed
    spare_when_full: bool = False  # counted while there is room, not refused when full


@dataclass(frozen=True, slots=True)
class Count:
    counter: Counter
    hits: int
    resets_at_ms: int

    @property
    def limit(self) -> int:
        return self.counter.rule.limit

    @property
    def full(self) -> bool:
        return self.hits >= self.limit

    @property
    def left(self) -> int:
        return max(0, self.limit - self.hits)

    @property
    def resets_at(self) -> float:
        return self.resets_at_ms / 1000


@dataclass(frozen=True, slots=True)
class Reservation:
    counts: tuple[Count, ...]

    def get(self, scope: str) -> Count | None:
        return next((c for c in self.counts if c.counter.rule.scope == scope), None)


@dataclass(frozen=True, slots=True)
class Refused:
    counter: Counter
    until: float  # epoch seconds

    def retry_after(self, now: float) -> int:
        return max(1, math.ceil(self.until - now))


@dataclass(frozen=True, slots=True)
class State:
    """A count as stored (for alerts and operators)."""

    hits: int
    resets_at_ms: int
    window_ms: int
    full_at_ms: int | None


class _Full(Exception):
    def __init__(self, refused: Refused) -> None:
        self.refused = refused


class Limiter:
    def __init__(self, db: Database, *, clock: Clock = time.time) -> None:
        self.db = db
        self.clock = clock
        self._key: bytes | None = None
        self._key_lock = asyncio.Lock()
        self._pruned_at = 0.0

    def now(self) -> float:
        return self.clock()

    async def reserve(self, counters: Sequence[Counter]) -> Reservation | Refused:
        """One from each count, or none and the count that refused. Callers taking
        several counts at once list them in one fixed order (of scopes), which keeps two
        transactions on PostgreSQL from waiting on each other's rows."""
        now_ms = int(self.now() * 1000)
        keys = [await self._subject(c) for c in counters]
        taken: list[Count] = []
        try:
            async with self.db.write() as conn:
                for counter, subject in zip(counters, keys, strict=True):
                    row = (await conn.execute(_take(self.db, counter, subject, now_ms))).first()
                    if row is not None:
                        taken.append(Count(counter, int(row.hits), int(row.resets_at)))
                        continue
                    if counter.spare_when_full:
                        continue
                    until = (
                        await conn.execute(
                            select(guess_limits.c.resets_at).where(
                                guess_limits.c.scope == counter.rule.scope,
                                guess_limits.c.subject == subject,
                            )
                        )
                    ).scalar_one()
                    raise _Full(Refused(counter, int(until) / 1000))
        except _Full as full:  # the transaction rolled back: nothing was counted
            return full.refused
        await self._prune(now_ms)
        return Reservation(tuple(taken))

    async def refund(self, reservation: Reservation) -> None:
        """Give back what `reserve` took (the check passed); a count whose window has
        moved on since is left alone."""
        if not reservation.counts:
            return
        async with self.db.write() as conn:
            for count in reservation.counts:
                subject = await self._subject(count.counter)
                await conn.execute(
                    update(guess_limits)
                    .where(
                        guess_limits.c.scope == count.counter.rule.scope,
                        guess_limits.c.subject == subject,
                        guess_limits.c.resets_at == count.resets_at_ms,
                        guess_limits.c.hits > 0,
                    )
                    .values(hits=guess_limits.c.hits - 1)
                )

    async def paused(self, counters: Sequence[Counter]) -> Refused | None:
        """Whether any of these counts is full now (read only: to show a pause before
        asking, or before a cheap check); the latest pause if several."""
        now_ms = int(self.now() * 1000)
        refused: Refused | None = None
        for counter in counters:
            if counter.spare_when_full:
                continue
            state = await self.state(counter)
            if state is None or state.resets_at_ms <= now_ms or state.hits < counter.rule.limit:
                continue
            if refused is None or state.resets_at_ms / 1000 > refused.until:
                refused = Refused(counter, state.resets_at_ms / 1000)
        return refused

    async def state(self, counter: Counter) -> State | None:
        subject = await self._subject(counter)
        c = guess_limits.c
        query = select(c.hits, c.resets_at, c.window_ms, c.full_at).where(
            c.scope == counter.rule.scope, c.subject == subject
        )
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        full_at = None if row.full_at is None else int(row.full_at)
        return State(int(row.hits), int(row.resets_at), int(row.window_ms), full_at)

    async def _subject(self, counter: Counter) -> str:
        key = await self._secret()
        message = f"{counter.rule.scope}\n{counter.subject}".encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    async def _secret(self) -> bytes:
        if self._key is not None:
            return self._key
        async with self._key_lock:
            if self._key is None:
                fresh = secrets.token_hex(32)
                async with self.db.write() as conn:
                    await conn.execute(
                        self.db.insert(limit_keys)
                        .values(name=KEY_NAME, secret=fresh)
                        .on_conflict_do_nothing(index_elements=[limit_keys.c.name])
                    )
                    stored = (
                        await conn.execute(
                            select(limit_keys.c.secret).where(limit_keys.c.name == KEY_NAME)
                        )
                    ).scalar_one()
                self._key = bytes.fromhex(stored)
            return self._key

    async def _prune(self, now_ms: int) -> None:
        if now_ms / 1000 - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = now_ms / 1000
        async with self.db.write() as conn:
            await conn.execute(
                delete(guess_limits).where(guess_limits.c.resets_at < now_ms - KEEP_MS)
            )


def _take(db: Database, counter: Counter, subject: str, now_ms: int) -> Any:
    """INSERT a first hit, or add one to a count that has room, or start its next
    window; nothing (no row returned) when it is full."""
    rule = counter.rule
    c = guess_limits.c
    now = literal(now_ms, BigInteger())
    base = literal(int(rule.window_s * 1000), BigInteger())
    most = int(max(rule.max_window_s, rule.window_s) * 1000)
    expired = c.resets_at <= now
    if most > rule.window_s * 1000:
        # The last window was full and this comes within a base window of its end.
        again = and_(c.hits >= rule.limit, c.resets_at + base > now)
        doubled = c.window_ms * 2
        grown = case((doubled > most, literal(most, BigInteger())), else_=doubled)
        next_window: Any = case((again, grown), else_=base)
    else:
        next_window = base
    hits = case((expired, 1), else_=c.hits + 1)
    first_full = now_ms if rule.limit <= 1 else None
    insert = db.insert(guess_limits).values(
        scope=rule.scope,
        subject=subject,
        hits=1,
        window_ms=int(rule.window_s * 1000),
        resets_at=now_ms + int(rule.window_s * 1000),
        full_at=first_full,
    )
    return insert.on_conflict_do_update(
        index_elements=[c.scope, c.subject],
        set_={
            "hits": hits,
            "window_ms": case((expired, next_window), else_=c.window_ms),
            "resets_at": case((expired, now + next_window), else_=c.resets_at),
            "full_at": case((hits >= rule.limit, now), else_=c.full_at),
        },
        where=or_(expired, c.hits < rule.limit),
    ).returning(c.hits, c.resets_at)
