"""The agent's one HTTP client for its hub: one session (one pool of kept-alive
connections) shared by the relay, the order sync and the checkout's payments, with
the store token set once. A driver of the hub link, as a device driver owns its port:
created on the running loop at first use, closed once by the app at stop.

    hub = HubClient(cfg.hub.url, cfg.store.id, cfg.hub.token)
    url = hub.store_url("events")          # {hub}/api/v1/stores/{store}/events
    async with hub.session().post(url, data=..., timeout=...) as resp: ...
"""

from __future__ import annotations

from urllib.parse import quote

import aiohttp

DEFAULT_TIMEOUT_S = 10.0


class HubClient:
    def __init__(
        self, hub_url: str, store_id: str, token: str, *, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.base = hub_url.rstrip("/")
        self.store_id = store_id
        self.token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def store_url(self, *parts: str) -> str:
        tail = "/".join(quote(p, safe="") for p in parts)
        return f"{self.base}/api/v1/stores/{quote(self.store_id, safe='')}/{tail}"

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            self._session = aiohttp.ClientSession(headers=headers, timeout=self._timeout)
        return self._session

    def redact(self, text: str) -> str:
        """`text` with the store token taken out (an error message may echo a URL)."""
        return text.replace(self.token, "[token]") if self.token else text

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
