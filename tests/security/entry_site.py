"""The customer entry page as an attacker (and a customer) meets it: the real hub
application on a real TCP port, reached from chosen loopback source addresses, through
`X-Forwarded-For` when the test plays a proxy.

    async with EntrySite.start(tmp_path, db, **entry) as site:
        guest = site.browser(source="127.0.0.7", forwarded_for="2001:db8::1")
        page = await guest.ask()
        result = await guest.answer(page, "错")
"""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from cloud.app import create_app
from cloud.config import HubConfig
from cloud.db.engine import Database
from cloud.db.tables import entry_attempts
from cloud.signing import write_keypair
from storerules.answers import hash_answer

STORE = "demo-001"
DOOR = "front"
PAGE = f"/s/{STORE}/{DOOR}"
QUESTION = "本店的门牌号是多少？"
ANSWER = "8"
HASHES = [hash_answer(ANSWER)]  # scrypt is slow on purpose: once per session


def hub_config(
    tmp_path: Path,
    *,
    limits: dict[str, Any] | None = None,
    alerts: dict[str, Any] | None = None,
    **entry: Any,
) -> HubConfig:
    if not (tmp_path / "keys" / "hub-signing.pem").exists():
        write_keypair(tmp_path / "keys", "demo")
    raw: dict[str, Any] = {
        "http": {"listen": "127.0.0.1:0"},
        "storage": {"dir": str(tmp_path / "hub")},
        "signing": {"key_file": str(tmp_path / "keys" / "hub-signing.pem"), "kid": "demo"},
        "mqtt": {"url": "mqtt://127.0.0.1:9"},
        "stores": [
            {
                "id": STORE,
                "name": "演示店",
                "token": "tok-store-one-0123456789abcdef",
                "entry": {
                    "doors": [DOOR, "back"],
                    "questions": [{"question": QUESTION, "answers": HASHES}],
                }
                | entry,
            }
        ],
    }
    if limits is not None:
        raw["limits"] = limits
    if alerts is not None:
        raw["alerts"] = alerts
    return HubConfig.model_validate(raw)


@dataclass
class Page:
    status: int
    text: str
    headers: Any

    @property
    def token(self) -> str:
        m = re.search(r'name="t" value="([^"]+)"', self.text)
        assert m, self.text
        return html.unescape(m[1])

    @property
    def granted(self) -> bool:
        return self.status == 200 and "pass-qr" in self.text

    @property
    def paused(self) -> bool:
        return self.status == 429


class Browser:
    """One phone: its own connection (from `source`) and cookie jar. `base` is any
    hub's address (a hub in another process too)."""

    def __init__(self, base: str, source: str, forwarded_for: str | None) -> None:
        self.base = base
        self.forwarded_for = forwarded_for
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=(source, 0), force_close=True),
            cookie_jar=aiohttp.CookieJar(unsafe=True),
        )

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.forwarded_for is not None:
            headers.setdefault("X-Forwarded-For", self.forwarded_for)
        return headers

    async def get(self, path: str = PAGE, headers: dict[str, str] | None = None) -> Page:
        async with self.session.get(self.base + path, headers=self._headers(headers)) as r:
            return Page(r.status, await r.text(), r.headers)

    async def ask(self, headers: dict[str, str] | None = None) -> Page:
        return await self.get(PAGE, headers)

    async def answer(
        self, asked: Page, text: str = ANSWER, headers: dict[str, str] | None = None
    ) -> Page:
        async with self.session.post(
            self.base + PAGE,
            data={"t": asked.token, "answer": text},
            headers=self._headers(headers),
        ) as r:
            return Page(r.status, await r.text(), r.headers)

    def forget(self) -> None:
        """Drop every cookie: the next visit is a stranger's."""
        self.session.cookie_jar.clear()

    async def close(self) -> None:
        await self.session.close()


class EntrySite:
    def __init__(self, app: web.Application, server: TestServer, db: Database) -> None:
        self.app, self.server, self.db = app, server, db
        self._browsers: list[Browser] = []

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        tmp_path: Path,
        db: Database,
        *,
        limits: dict[str, Any] | None = None,
        alerts: dict[str, Any] | None = None,
        **entry: Any,
    ) -> AsyncIterator[EntrySite]:
        app = create_app(hub_config(tmp_path, limits=limits, alerts=alerts, **entry), db)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        site = cls(app, server, db)
        try:
            yield site
        finally:
            for b in site._browsers:
                await b.close()
            await server.close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def browser(self, source: str = "127.0.0.1", forwarded_for: str | None = None) -> Browser:
        b = Browser(self.base, source, forwarded_for)
        self._browsers.append(b)
        return b

    async def outcomes(self, door: str = DOOR) -> list[str]:
        query = (
            select(entry_attempts.c.outcome)
            .where(entry_attempts.c.store_id == STORE, entry_attempts.c.door == door)
            .order_by(entry_attempts.c.id)
        )
        async with self.db.read() as conn:
            return list((await conn.execute(query)).scalars())

    async def checked(self, door: str = DOOR) -> int:
        """How many answers were actually checked (right or wrong) at the door."""
        return sum(o in ("wrong_answer", "granted") for o in await self.outcomes(door))
