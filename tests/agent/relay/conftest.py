"""A stand-in hub for the relay's tests: a real aiohttp server on loopback.

It answers like the hub's contract (CONTRACTS.md section 4): it checks the bearer token,
un-gzips the body, stores each event id once and answers {"accepted": N, "duplicates": M}.
Tests change its answers with `hub.answer` and take it down and up with stop()/start().
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from agent.clock import Clock
from agent.journal import Journal
from agent.relay import Relay

TOKEN = "s3cret-store-token-do-not-log"
STORE = "demo-001"

# Return a Response to answer with it, or None for the normal answer.
Answer = Callable[[list[dict[str, Any]]], Awaitable[web.Response | None]]


@dataclass
class Request:
    at: float  # time.monotonic()
    headers: dict[str, str]
    events: list[dict[str, Any]]
    status: int = 0


@dataclass
class FakeHub:
    port: int
    token: str = TOKEN
    answer: Answer | None = None
    # Awaited after the events are stored, before the answer goes out.
    before_reply: Callable[[list[dict[str, Any]]], Awaitable[None]] | None = None
    requests: list[Request] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)  # every event of every 2xx
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> event, once
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/api/v1/stores/{store}/events", self._events)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def stored_seqs(self) -> list[int]:
        return sorted(e["seq"] for e in self.stored.values())

    async def _events(self, request: web.Request) -> web.Response:
        # aiohttp undoes Content-Encoding: gzip itself (the real hub relies on it too).
        events = json.loads(await request.read())["events"]
        rec = Request(time.monotonic(), dict(request.headers), events)
        self.requests.append(rec)
        response = await self._respond(request, events)
        rec.status = response.status
        return response

    async def _respond(self, request: web.Request, events: list[dict[str, Any]]) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "bad token"}, status=401)
        if request.match_info["store"] != STORE:
            return web.json_response({"error": "unknown store"}, status=404)
        if self.answer is not None:
            response = await self.answer(events)
            if response is not None:
                return response
        accepted = duplicates = 0
        for ev in events:
            self.received.append(ev)
            if ev["id"] in self.stored:
                duplicates += 1
            else:
                self.stored[ev["id"]] = ev
                accepted += 1
        if self.before_reply is not None:
            await self.before_reply(events)
        return web.json_response({"accepted": accepted, "duplicates": duplicates})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_for(check: Callable[[], Any], within: float = 4.0, what: str = "it") -> Any:
    """Poll `check` (sync or async) on the loop until it is truthy."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    h = FakeHub(free_port())
    await h.start()
    yield h
    await h.stop()


@pytest.fixture
async def down_hub() -> AsyncIterator[FakeHub]:
    """A hub that is not listening yet (connection refused until started)."""
    h = FakeHub(free_port())
    yield h
    await h.stop()


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    j = await Journal.open(tmp_path / "journal.db", STORE, Clock())
    yield j
    await j.close()


@pytest.fixture
async def make_relay(journal: Journal) -> AsyncIterator[Callable[..., Relay]]:
    relays: list[Relay] = []

    def make(hub: FakeHub, **kw: Any) -> Relay:
        kw = {"retry_min_s": 0.05, "retry_max_s": 0.2} | kw
        relay = Relay(journal, hub_url=hub.url, store_id=STORE, token=TOKEN, **kw)
        relays.append(relay)
        return relay

    yield make
    for relay in relays:  # before the journal fixture closes the journal
        await relay.stop()


async def append(journal: Journal, n: int, type_: str = "sale.completed") -> list[int]:
    events = await journal.append_many([(type_, {"i": i}) for i in range(n)])
    return [e.seq for e in events]
