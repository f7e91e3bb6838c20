"""Two real hub processes (`shopgate-hub run`) on one PostgreSQL database, one signing
key: a burst of wrong answers spread over both is counted once, together."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from cloud.db.engine import Database
from cloud.db.tables import entry_attempts
from cloud.signing import write_keypair
from cloud.web.entry import VISITOR_COOKIE
from tests.security.entry_site import PAGE, Page
from tests.support.hub import HubHandle, own_kid, production_env, start_hub
from tests.support.postgres import postgres_database


@pytest.fixture
def db_url() -> Iterator[str]:
    with postgres_database() as url:  # outside the test's event loop: it runs its own
        yield url


def start_two(tmp_path: Path, db_url: str) -> list[HubHandle]:
    write_keypair(tmp_path / "a" / "keys", "demo")
    shutil.copytree(tmp_path / "a" / "keys", tmp_path / "b" / "keys")

    def trust_loopback(raw: dict[str, Any]) -> None:
        # A proxy forwards other machines' calls: the hub needs its own secrets then.
        raw["limits"] = {"trusted_proxies": ["127.0.0.1"]}
        own_kid(raw)

    env = production_env()
    return [
        start_hub(tmp_path / name, db_url=db_url, edit=trust_loopback, env=env)
        for name in ("a", "b")
    ]


async def checked(db_url: str) -> list[str]:
    db = await Database.open(db_url)
    try:
        async with db.read() as conn:
            query = select(entry_attempts.c.outcome).order_by(entry_attempts.c.id)
            return list((await conn.execute(query)).scalars())
    finally:
        await db.close()


async def test_50_wrong_answers_over_two_hubs_check_only_5(tmp_path: Path, db_url: str) -> None:
    hubs = await asyncio.to_thread(start_two, tmp_path, db_url)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(hubs[0].url + PAGE) as resp:
                asked = Page(resp.status, await resp.text(), resp.headers)
                visitor = resp.cookies[VISITOR_COOKIE].value
            headers = {"Cookie": f"{VISITOR_COOKIE}={visitor}"}

            async def wrong(n: int) -> int:
                url = hubs[n % 2].url + PAGE
                data = {"t": asked.token, "answer": f"错{n}"}
                async with session.post(url, data=data, headers=headers) as resp:
                    await resp.read()
                    return resp.status

            statuses = await asyncio.gather(*(wrong(n) for n in range(50)))
        outcomes = await checked(db_url)
        assert outcomes.count("wrong_answer") == 5
        assert statuses.count(429) == 46
    finally:
        for hub in hubs:
            await asyncio.to_thread(hub.stop)


async def test_changing_address_between_two_hubs_is_caught_at_the_door(
    tmp_path: Path, db_url: str
) -> None:
    """Through the proxy (loopback is trusted here), a new address and a new cookie for
    every answer, alternating hubs: the door's count (30) is the two hubs' together."""
    hubs = await asyncio.to_thread(start_two, tmp_path, db_url)
    try:

        async def guess(n: int) -> int:
            hub = hubs[n % 2]
            headers = {"X-Forwarded-For": f"198.51.{n // 200}.{n % 200 + 1}"}
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
                async with s.get(hub.url + PAGE, headers=headers) as resp:
                    asked = Page(resp.status, await resp.text(), resp.headers)
                if asked.paused:
                    return 429
                data = {"t": asked.token, "answer": "999"}
                async with s.post(hub.url + PAGE, data=data, headers=headers) as resp:
                    await resp.read()
                    return resp.status

        statuses = await asyncio.gather(*(guess(n) for n in range(60)))
        outcomes = await checked(db_url)
        assert outcomes.count("wrong_answer") == 30
        assert statuses.count(200) == 29  # the 30th wrong answer was told of the pause
    finally:
        for hub in hubs:
            await asyncio.to_thread(hub.stop)
