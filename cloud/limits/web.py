"""The limits on the aiohttp side: who the client of a request is, the application's
limiter, and the hub-wide "failures per address" counts.

    attach(app)                               # create_app does it
    where = client_bucket(request)            # "203.0.113.7", "2001:db8:1:2::/64", "unknown"
    counter = address_counter(request, "api.token", cfg.limits.api_tokens)
    limiter = request.app[LIMITER]
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from cloud.api.appkeys import CONFIG, DB
from cloud.limits.addresses import (
    Header,
    TrustedProxies,
    bucket,
    client_address,
    header_hops,
)
from cloud.limits.counters import Counter, Limiter, Refused, Rule
from cloud.limits.settings import FailureLimit, LimitsConfig

log = logging.getLogger("cloud.limits")

LIMITER = web.AppKey("limiter", Limiter)
# Called when a door's entry page pauses for everyone: (store, door, paused until (epoch
# seconds), wrong answers counted, over how many seconds). The alerts register here.
DoorPaused = Callable[[str, str, float, int, float], Awaitable[None]]
DOOR_PAUSED = web.AppKey("entry_door_paused", list[DoorPaused])
_CLIENT = web.RequestKey("client_bucket", str)
_HEADER_NAMES: dict[Header, str] = {"x-forwarded-for": "X-Forwarded-For", "forwarded": "Forwarded"}
_warned_unconfigured = False


def attach(app: web.Application) -> None:
    app[LIMITER] = Limiter(app[DB])
    app[DOOR_PAUSED] = []


@functools.lru_cache(maxsize=8)
def _trusted(entries: tuple[str, ...]) -> TrustedProxies:
    return TrustedProxies.parse(entries)


def client_bucket(request: web.Request) -> str:
    """Whose counts this request adds to: the client's IPv4 address or IPv6 network, as
    the trusted proxies report it (limits.trusted_proxies)."""
    known = request.get(_CLIENT)
    if known is not None:
        return known
    cfg: LimitsConfig = request.app[CONFIG].limits
    trusted = _trusted(tuple(cfg.trusted_proxies))
    name = _HEADER_NAMES[cfg.client_header]
    values = request.headers.getall(name, [])
    if not trusted and values:
        _warn_unconfigured(request.remote, name)
    address = client_address(request.remote, header_hops(values, cfg.client_header), trusted)
    found = bucket(address, cfg.ipv6_prefix)
    request[_CLIENT] = found
    return found


def _warn_unconfigured(peer: str | None, header: str) -> None:
    global _warned_unconfigured
    if not _warned_unconfigured:
        _warned_unconfigured = True
        log.warning(
            "requests carry %s but limits.trusted_proxies is empty: the header is ignored. "
            "Behind a reverse proxy, list it there, or every client shares its address's "
            "limits",
            header,
            extra={"peer": peer},
        )


def address_rule(scope: str, limit: FailureLimit) -> Rule:
    return Rule(scope, limit=limit.max_failures, window_s=limit.window_seconds)


def address_counter(request: web.Request, scope: str, limit: FailureLimit) -> Counter:
    return Counter(address_rule(scope, limit), client_bucket(request))


def retry_headers(limiter: Limiter, refused: Refused) -> dict[str, str]:
    return {"Retry-After": str(refused.retry_after(limiter.now()))}
