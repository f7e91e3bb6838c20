"""DingTalk custom robot (自定义机器人) client: signed markdown messages to a group chat.

    robot = DingTalkRobot(webhook, secret)   # webhook: .../robot/send?access_token=...
    await robot.send_markdown("门未关", "### 门未关\n...")  # or DingTalkError
    await robot.close()

With the 加签 security setting each request carries `timestamp` (ms) and
`sign = urlencode(base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")))` in its
query; DingTalk refuses a timestamp more than an hour off its clock (errcode 310000).
DingTalk answers HTTP 200 with `{"errcode": 0, "errmsg": "ok"}`, or a non-zero errcode:
130101 when the robot sent more than 20 messages in a minute (it is then throttled for
a while: back off), 310000 for a bad signature, timestamp, keyword or IP, 460101 for a
message over 20,000 bytes.

The webhook's access_token and the secret are credentials: they never appear in a log
line, an exception or a repr.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import aiohttp
from yarl import URL

RATE_LIMITED = 130101  # "send too fast, exceed 20 times per minute"
BAD_SIGNATURE = 310000  # sign not match / invalid timestamp / keywords / ip
TOO_LONG = 460101  # "message too long, exceed 20000 bytes"
UNREACHABLE = -1  # our own code: no answer from DingTalk (network, HTTP status, not JSON)
MAX_MESSAGE_BYTES = 20000
TIMEOUT_S = 10.0


def sign(secret: str, timestamp_ms: int) -> str:
    """The `sign` query value, already URL-encoded, as DingTalk documents it."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode("ascii"))


def signed_url(webhook: str, secret: str, timestamp_ms: int) -> str:
    """The webhook with `&timestamp=...&sign=...` appended (nothing when no secret)."""
    if not secret:
        return webhook
    joiner = "&" if urllib.parse.urlsplit(webhook).query else "?"
    return f"{webhook}{joiner}timestamp={timestamp_ms}&sign={sign(secret, timestamp_ms)}"


def markdown(title: str, text: str) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}


class DingTalkError(Exception):
    """DingTalk did not take the message. `errcode` is DingTalk's, or UNREACHABLE."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"errcode {errcode}: {errmsg}" if errcode != UNREACHABLE else errmsg)
        self.errcode = errcode
        self.errmsg = errmsg

    @property
    def rate_limited(self) -> bool:
        return self.errcode == RATE_LIMITED


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class DingTalkRobot:
    def __init__(
        self,
        webhook: str,
        secret: str = "",
        *,
        timeout_s: float = TIMEOUT_S,
        clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self._webhook = webhook
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._clock_ms = clock_ms
        self._session: aiohttp.ClientSession | None = None
        parts = urllib.parse.urlsplit(webhook)
        self.where = f"{parts.scheme}://{parts.netloc}{parts.path}"  # no token: for logs

    def __repr__(self) -> str:
        return f"DingTalkRobot({self.where})"

    async def send_markdown(self, title: str, text: str) -> None:
        await self.send(markdown(title, text))

    async def send(self, message: dict[str, Any]) -> None:
        """Post one message; returns once DingTalk took it, else DingTalkError."""
        body = json.dumps(message, ensure_ascii=False).encode("utf-8")
        url = URL(signed_url(self._webhook, self._secret, self._clock_ms()), encoded=True)
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(
                url, data=body, headers={"Content-Type": "application/json; charset=utf-8"}
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except TimeoutError:
            raise DingTalkError(UNREACHABLE, f"no answer from {self.where} in time") from None
        except aiohttp.ClientConnectorError as e:
            # Its text names host and port only, never the query with the token.
            reason = e.os_error.strerror or type(e.os_error).__name__
            raise DingTalkError(UNREACHABLE, f"cannot reach {e.host}:{e.port}: {reason}") from None
        except aiohttp.ClientError as e:
            raise DingTalkError(UNREACHABLE, f"{type(e).__name__} from {self.where}") from None
        if status != 200:
            raise DingTalkError(UNREACHABLE, f"HTTP {status} from {self.where}")
        try:
            answer = json.loads(raw)
            errcode = int(answer.get("errcode", UNREACHABLE))
        except (ValueError, TypeError, AttributeError):
            why = f"an answer that is not JSON from {self.where}"
            raise DingTalkError(UNREACHABLE, why) from None
        if errcode != 0:
            raise DingTalkError(errcode, str(answer.get("errmsg", ""))[:500])

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
