"""The hub's signing key for what its routes sign (an agent's order sync), read once on
first use: an application whose routes never sign (tests of other routes) needs no key
file, and a missing or unreadable key is a 503 naming the problem, not a crash."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud import signing
from cloud.api.appkeys import CONFIG
from cloud.api.errors import ApiError

log = logging.getLogger(__name__)


class HubKey:
    def __init__(self) -> None:
        self._key: tuple[Ed25519PrivateKey, str] | None = None
        self._lock = asyncio.Lock()

    async def get(self, app: web.Application) -> tuple[Ed25519PrivateKey, str]:
        async with self._lock:
            if self._key is None:
                cfg = app[CONFIG]
                try:
                    self._key = await asyncio.to_thread(
                        signing.load_private_key, cfg.signing.key_file, cfg.signing.kid
                    )
                except signing.SigningError as e:
                    log.error("cannot sign: %s", e)
                    raise ApiError(
                        503, "unavailable", "the hub's signing key is unavailable"
                    ) from None
            return self._key


HUB_KEY = web.AppKey("hub_key", HubKey)


def install(app: web.Application) -> None:
    if HUB_KEY not in app:
        app[HUB_KEY] = HubKey()


async def hub_signing_key(app: web.Application) -> tuple[Ed25519PrivateKey, str]:
    return await app[HUB_KEY].get(app)
