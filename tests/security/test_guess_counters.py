"""The guess counts themselves (cloud/limits/counters.py) on SQLite and PostgreSQL:
atomic under concurrency, all-or-nothing across counts, refunds, windows that grow
under a sustained attack, and a restart that forgets nothing."""

from __future__ import annotations

import asyncio

import pytest

from cloud.db.engine import Database
from cloud.limits.counters import Counter, Limiter, Refused, Reservation, Rule
from tests.cloud import conftest as hub_db

# Every test here runs on SQLite and on PostgreSQL (tests/cloud/conftest.py).
db, db_url, shared_pg_url = hub_db.db, hub_db.db_url, hub_db.shared_pg_url

T0 = 1_750_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


FIVE = Rule("test.visitor", limit=5, window_s=600)
TWENTY = Rule("test.address", limit=20, window_s=600)


async def test_50_concurrent_reservations_take_exactly_the_limit(db: Database) -> None:
    limiter = Limiter(db)
    counter = Counter(FIVE, "v1")
    results = await asyncio.gather(*(limiter.reserve([counter]) for _ in range(50)))
    taken = [r for r in results if isinstance(r, Reservation)]
    assert len(taken) == 5
    assert sorted(r.counts[0].hits for r in taken) == [1, 2, 3, 4, 5]
    assert all(isinstance(r, Refused) and r.counter == counter for r in results if r not in taken)


async def test_two_limiters_on_one_database_share_the_counts(db_url: str) -> None:
    # Two hub processes: two engines, two connection pools, one database.
    first, second = await Database.open(db_url), await Database.open(db_url)
    try:
        a, b = Limiter(first), Limiter(second)
        counter = Counter(TWENTY, "203.0.113.7")
        results = await asyncio.gather(*(limiter.reserve([counter]) for limiter in [a, b] * 30))
        assert sum(isinstance(r, Reservation) for r in results) == 20
    finally:
        await first.close()
        await second.close()


async def test_a_refused_count_takes_nothing_from_the_others(db: Database) -> None:
    clock = FakeClock()
    limiter = Limiter(db, clock=clock)
    address = Counter(Rule("test.address", limit=2, window_s=600), "a")
    for visitor in ("v1", "v2"):
        assert isinstance(await limiter.reserve([Counter(FIVE, visitor), address]), Reservation)
    refused = await limiter.reserve([Counter(FIVE, "v3"), address])
    assert isinstance(refused, Refused) and refused.counter == address
    assert refused.until == T0 + 600 and refused.retry_after(T0) == 600
    # v3's own count was rolled back with the refusal.
    assert await limiter.state(Counter(FIVE, "v3")) is None


async def test_a_refund_gives_the_try_back(db: Database) -> None:
    limiter = Limiter(db)
    counter = Counter(Rule("test.x", limit=1, window_s=600), "s")
    taken = await limiter.reserve([counter])
    assert isinstance(taken, Reservation) and taken.counts[0].full
    assert isinstance(await limiter.reserve([counter]), Refused)
    await limiter.refund(taken)
    assert isinstance(await limiter.reserve([counter]), Reservation)


async def test_the_pause_lasts_until_the_window_ends(db: Database) -> None:
    clock = FakeClock()
    limiter = Limiter(db, clock=clock)
    counter = Counter(FIVE, "v")
    for _ in range(5):
        clock.t += 10
        assert isinstance(await limiter.reserve([counter]), Reservation)
    assert await limiter.paused([counter]) is not None
    clock.t = T0 + 10 + 599.999
    assert isinstance(await limiter.reserve([counter]), Refused)
    clock.t = T0 + 10 + 600
    assert await limiter.paused([counter]) is None
    again = await limiter.reserve([counter])
    assert isinstance(again, Reservation) and again.counts[0].hits == 1


async def test_windows_filled_back_to_back_grow_to_the_maximum(db: Database) -> None:
    clock = FakeClock()
    limiter = Limiter(db, clock=clock)
    door = Counter(Rule("test.door", limit=3, window_s=300, max_window_s=1200), "s/front")
    pauses = []
    for _ in range(5):
        for _ in range(3):
            assert isinstance(await limiter.reserve([door]), Reservation)
        refused = await limiter.reserve([door])
        assert isinstance(refused, Refused)
        pauses.append(refused.until - clock.t)
        clock.t = refused.until  # the attacker comes back the moment the pause ends
    assert pauses == [300, 600, 1200, 1200, 1200]
    # A quiet spell (a base window after the last pause) and it starts small again.
    clock.t += 300
    for _ in range(3):
        await limiter.reserve([door])
    refused = await limiter.reserve([door])
    assert isinstance(refused, Refused) and refused.until - clock.t == 300


async def test_a_spared_caller_is_counted_while_there_is_room_and_passes_when_full(
    db: Database,
) -> None:
    limiter = Limiter(db)
    rule = Rule("test.door", limit=2, window_s=300)
    for _ in range(2):
        assert isinstance(await limiter.reserve([Counter(rule, "d")]), Reservation)
    assert isinstance(await limiter.reserve([Counter(rule, "d")]), Refused)
    spared = await limiter.reserve([Counter(FIVE, "regular"), Counter(rule, "d", True)])
    assert isinstance(spared, Reservation)
    assert [c.counter.rule.scope for c in spared.counts] == ["test.visitor"]


async def test_the_counts_survive_a_restart(db_url: str) -> None:
    first = await Database.open(db_url)
    try:
        for _ in range(5):
            await Limiter(first).reserve([Counter(FIVE, "v")])
    finally:
        await first.close()
    second = await Database.open(db_url)
    try:
        assert await Limiter(second).paused([Counter(FIVE, "v")]) is not None
    finally:
        await second.close()


async def test_subjects_are_stored_as_keyed_hashes(db: Database) -> None:
    from sqlalchemy import select

    from cloud.limits.counters import guess_limits

    await Limiter(db).reserve([Counter(TWENTY, "203.0.113.7")])
    async with db.read() as conn:
        [subject] = (await conn.execute(select(guess_limits.c.subject))).scalars()
    assert "203.0.113.7" not in subject and len(subject) == 64


@pytest.mark.parametrize("limit", [0, -1])
def test_a_rule_needs_a_limit(limit: int) -> None:
    with pytest.raises(ValueError):
        Rule("x", limit=limit, window_s=1)
