"""Everywhere else on the hub a caller can guess: bearer tokens on the API, the dashboard
login, courier links, pay pages. Each counts failures per client address in the database
(cloud/limits), answers no more than the limit of them per window, then pauses the
address (429, Retry-After) for right and wrong alike; other addresses are not paused."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from cloud.api.courier import load_keys
from cloud.app import create_app
from cloud.config import HubConfig
from cloud.db.engine import Database
from cloud.db.principals import sync_principals
from cloud.db.tables import rejections
from tests.cloud import conftest as hub_db
from tests.security.entry_site import hub_config

# Every test here runs on SQLite and on PostgreSQL (tests/cloud/conftest.py).
db, db_url, shared_pg_url = hub_db.db, hub_db.db_url, hub_db.shared_pg_url

STORE_TOKEN = "tok-store-one-0123456789abcdef"
MERCHANT_TOKEN = "tok-merchant-0123456789abcdef"
STORE = "demo-001"


def config(tmp_path: Path, **limits: Any) -> HubConfig:
    cfg = hub_config(tmp_path, limits=limits)
    raw = cfg.model_dump(mode="json")
    raw["merchants"] = [{"id": "owner", "token": MERCHANT_TOKEN, "stores": [STORE]}]
    raw["payments"] = {"demo": True, "notify_secret": "x" * 32}
    return HubConfig.model_validate(raw)


class Hub:
    def __init__(self, server: TestServer, cfg: HubConfig, db: Database) -> None:
        self.server, self.cfg, self.db = server, cfg, db
        self._sessions: list[aiohttp.ClientSession] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.port}{path}"

    def client(self, source: str = "127.0.0.1") -> aiohttp.ClientSession:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=(source, 0)),
            cookie_jar=aiohttp.CookieJar(unsafe=True),
        )
        self._sessions.append(session)
        return session

    async def rejected(self) -> list[Any]:
        async with self.db.read() as conn:
            return list(await conn.execute(select(rejections).order_by(rejections.c.id)))


@contextlib.asynccontextmanager
async def hub(tmp_path: Path, db: Database, **limits: Any) -> AsyncIterator[Hub]:
    cfg = config(tmp_path, **limits)
    await sync_principals(db, cfg.stores, cfg.merchants)
    server = TestServer(create_app(cfg, db), host="127.0.0.1")
    await server.start_server()
    h = Hub(server, cfg, db)
    try:
        yield h
    finally:
        for s in h._sessions:
            await s.close()
        await server.close()


async def status_of(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> int:
    async with session.request(method, url, allow_redirects=False, **kw) as resp:
        await resp.read()
        return resp.status


# --- bearer tokens -----------------------------------------------------------------------


async def test_50_concurrent_unknown_tokens_get_30_answers(tmp_path: Path, db: Database) -> None:
    async with hub(tmp_path, db) as h:
        guesser = h.client("127.0.7.1")
        url = h.url(f"/api/v1/stores/{STORE}/events")
        statuses = await asyncio.gather(
            *(
                status_of(guesser, "GET", url, headers={"Authorization": f"Bearer guess-{n}"})
                for n in range(50)
            )
        )
        assert statuses.count(401) == 30 and statuses.count(429) == 20
        # Paused now: the right token from that address waits too, and is told how long.
        async with guesser.get(url, headers={"Authorization": f"Bearer {STORE_TOKEN}"}) as resp:
            assert resp.status == 429
            assert (await resp.json())["error"]["code"] == "paused"
            assert 0 < int(resp.headers["Retry-After"]) <= 600
        # The store's agent elsewhere is not.
        agent = h.client("127.0.7.2")
        assert (
            await status_of(agent, "GET", url, headers={"Authorization": f"Bearer {STORE_TOKEN}"})
            == 200
        )
        # Each answered refusal is kept for the operator, the token tried is not.
        rows = await h.rejected()
        assert len(rows) == 30 and all(r.status == 401 for r in rows)
        assert "127.0.7.1" in rows[0].reason and "guess" not in rows[0].reason


async def test_a_right_token_is_not_counted(tmp_path: Path, db: Database) -> None:
    async with hub(tmp_path, db, api_tokens={"max_failures": 2, "window_seconds": 60}) as h:
        agent = h.client("127.0.7.3")
        url = h.url(f"/api/v1/stores/{STORE}/events")
        for _ in range(20):
            assert (
                await status_of(
                    agent, "GET", url, headers={"Authorization": f"Bearer {STORE_TOKEN}"}
                )
                == 200
            )
        bad = {"Authorization": "Bearer nope"}
        assert [await status_of(agent, "GET", url, headers=bad) for _ in range(3)] == [
            401,
            401,
            429,
        ]


# --- the dashboard login -----------------------------------------------------------------


async def login(h: Hub, session: aiohttp.ClientSession, token: str) -> int:
    async with session.get(h.url("/dashboard/login")) as resp:
        csrf = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
    assert csrf
    data = {"token": token, "csrf": csrf[1]}
    return await status_of(session, "POST", h.url("/dashboard/login"), data=data)


async def test_dashboard_login_guesses_are_limited_per_address(
    tmp_path: Path, db: Database
) -> None:
    async with hub(tmp_path, db) as h:
        guesser = h.client("127.0.8.1")
        statuses = [await login(h, guesser, f"guess-{n}") for n in range(12)]
        assert statuses == [401] * 10 + [429] * 2
        assert await login(h, guesser, MERCHANT_TOKEN) == 429
        owner = h.client("127.0.8.2")
        assert await login(h, owner, MERCHANT_TOKEN) == 303
        rows = await h.rejected()
        assert len(rows) == 10 and rows[0].endpoint == "/dashboard/login"


async def test_a_burst_of_dashboard_logins_gets_10_answers(tmp_path: Path, db: Database) -> None:
    async with hub(tmp_path, db) as h:
        sessions = [h.client("127.0.8.3") for _ in range(30)]
        statuses = await asyncio.gather(
            *(login(h, s, f"guess-{n}") for n, s in enumerate(sessions))
        )
        assert statuses.count(401) == 10 and statuses.count(429) == 20


# --- courier links and pay pages ---------------------------------------------------------


async def test_bad_courier_links_are_limited_per_address(tmp_path: Path, db: Database) -> None:
    async with hub(tmp_path, db) as h:
        guesser = h.client("127.0.9.1")
        good = load_keys(h.cfg).path(STORE, "o-1")
        urls = [h.url(f"/c/{STORE}/o-1?sig={n:032x}") for n in range(25)]
        statuses = await asyncio.gather(*(status_of(guesser, "GET", u) for u in urls))
        assert statuses.count(403) == 20 and statuses.count(429) == 5
        assert await status_of(guesser, "GET", h.url(good)) == 429
        # The rider's phone elsewhere opens the real link (no such order here: 404).
        assert await status_of(h.client("127.0.9.2"), "GET", h.url(good)) == 404


async def test_trawling_for_payment_ids_is_limited_per_address(
    tmp_path: Path, db: Database
) -> None:
    async with hub(tmp_path, db) as h:
        guesser = h.client("127.0.9.3")
        urls = [h.url(f"/pay/pay_guess{n}") for n in range(32)]
        statuses = await asyncio.gather(*(status_of(guesser, "GET", u) for u in urls))
        assert statuses.count(404) == 30 and statuses.count(429) == 2
        confirm = h.url("/pay/pay_guess99/confirm")
        assert await status_of(guesser, "POST", confirm) == 429
        assert await status_of(h.client("127.0.9.4"), "POST", confirm) == 404
