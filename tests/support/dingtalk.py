"""A fake DingTalk robot API on loopback that checks requests as DingTalk does.

    async with FakeDingTalk(secret="SEC...") as ding:     # robots {"tok": secret}
        robot = DingTalkRobot(ding.webhook(), "SEC...")
        ...
        ding.messages       # every message taken: [Received(at, token, body), ...]

`POST /robot/send?access_token=T[&timestamp=MS&sign=S]`:
- an unknown access_token: errcode 300001 "token is not exist";
- with a secret, the raw query is form-decoded (so a `+` left unencoded reads as a space)
  and `sign` must equal base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")), with the
  timestamp within an hour of the server's clock: else errcode 310000;
- more than `per_minute` messages taken in the last 60 s: errcode 130101, nothing taken;
- a body that is not a text/markdown message: errcode 40035; over 20,000 bytes: 460101.
`fail_next(n, status=503)` makes the next n requests fail (an outage).

For a hub in another process, `with serve_in_thread(FakeDingTalk()) as ding:` runs it on
its own event loop in a thread.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

WINDOW_S = 60.0
MAX_SKEW_MS = 3600 * 1000
MAX_BYTES = 20000


@dataclass(frozen=True)
class Received:
    at: float
    token: str
    body: dict[str, Any]

    @property
    def title(self) -> str:
        return str(self.body.get("markdown", {}).get("title", ""))

    @property
    def text(self) -> str:
        return str(self.body.get("markdown", {}).get("text", ""))


@dataclass
class FakeDingTalk:
    secret: str = "SECfake-robot-secret"
    token: str = "robot-token-1"
    per_minute: int = 20
    clock: Callable[[], float] = time.time
    robots: dict[str, str] = field(default_factory=dict)  # token -> secret ("" unsigned)
    messages: list[Received] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)  # (errcode, errmsg)
    requests: int = 0
    _fail: list[int] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    port: int = 0

    def __post_init__(self) -> None:
        self.robots.setdefault(self.token, self.secret)

    async def __aenter__(self) -> FakeDingTalk:
        app = web.Application()
        app.router.add_post("/robot/send", self._send)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/robot/send"

    def webhook(self, token: str | None = None) -> str:
        return f"{self.base_url}?access_token={token or self.token}"

    def fail_next(self, n: int, status: int = 503) -> None:
        self._fail.extend([status] * n)

    def texts(self) -> list[str]:
        return [m.text for m in self.messages]

    async def _send(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self._fail:
            return web.Response(status=self._fail.pop(0), text="upstream unavailable")
        query = parse_qs(request.rel_url.raw_query_string)
        token = query.get("access_token", [""])[0]
        if token not in self.robots:
            return self._refuse(300001, "token is not exist")
        secret = self.robots[token]
        if secret:
            problem = _check_sign(query, secret, self.clock())
            if problem:
                return self._refuse(310000, problem)
        raw = await request.read()
        if len(raw) > MAX_BYTES:
            return self._refuse(460101, "message too long, exceed 20000 bytes")
        try:
            body = json.loads(raw)
        except ValueError:
            return self._refuse(40035, "缺少参数 json")
        if not _valid_message(body):
            return self._refuse(40035, "缺少参数 json")
        now = self.clock()
        recent = [m for m in self.messages if m.token == token and now - m.at < WINDOW_S]
        if len(recent) >= self.per_minute:
            return self._refuse(130101, "send too fast, exceed 20 times per minute")
        self.messages.append(Received(now, token, body))
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    def _refuse(self, errcode: int, errmsg: str) -> web.Response:
        self.refused.append((errcode, errmsg))
        return web.json_response({"errcode": errcode, "errmsg": errmsg})


def _check_sign(query: dict[str, list[str]], secret: str, now: float) -> str | None:
    ts_text = query.get("timestamp", [""])[0]
    given = query.get("sign", [""])[0]
    if not ts_text.isdigit() or not given:
        return "sign not match: timestamp and sign must both be in the URL"
    ts = int(ts_text)
    if abs(now * 1000 - ts) > MAX_SKEW_MS:
        return "invalid timestamp"
    digest = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(given, base64.b64encode(digest).decode()):
        return "sign not match"
    return None


def _valid_message(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    kind = body.get("msgtype")
    if kind == "markdown":
        md = body.get("markdown")
        return (
            isinstance(md, dict)
            and isinstance(md.get("title"), str)
            and isinstance(md.get("text"), str)
            and bool(md["text"])
        )
    if kind == "text":
        return isinstance(body.get("text"), dict) and isinstance(body["text"].get("content"), str)
    return False


@contextlib.contextmanager
def serve_in_thread(fake: FakeDingTalk) -> Iterator[FakeDingTalk]:
    """Run `fake` on an event loop of its own, in a daemon thread, while the block runs."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    thread = threading.Thread(target=loop.run_forever, name="fake-dingtalk", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(fake.__aenter__(), loop).result(timeout=10)
        ready.set()
        yield fake
    finally:
        if ready.is_set():
            asyncio.run_coroutine_threadsafe(fake.__aexit__(None, None, None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()
