"""Bearer tokens: who is calling (the middleware), and may they do this (`require`).

No token, or one the hub does not know: 401. A known caller asking for a store that is not
theirs: 403. Tokens are never logged: failures log the caller's address and the path only.

Unknown tokens are counted per client address (`limits.api_tokens`, cloud/limits): past
the limit the address is paused, and every request from it is 429 with Retry-After,
even one with a right token, until the window ends. The check is cheap and on every
call, so the pause is read before the lookup and only a failure is counted (atomically:
no more than the limit of unknown tokens is ever answered 401 per window); each 401 is
kept in `rejections` for the operator.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from cloud.api.appkeys import CONFIG, DB, PRINCIPAL
from cloud.api.errors import ApiError
from cloud.db.events import record_rejection
from cloud.db.principals import Principal, find_principal
from cloud.limits.counters import Refused
from cloud.limits.web import LIMITER, address_counter, client_bucket, retry_headers

log = logging.getLogger("cloud.api.auth")

_PUBLIC = "_shopgate_public"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="shopgate-hub"'}

RouteHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def public(handler: RouteHandler) -> RouteHandler:
    """Mark a handler as needing no token (health checks, later the customer pages)."""
    setattr(handler, _PUBLIC, True)
    return handler


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = request.match_info
    if route.http_exception is not None or getattr(route.handler, _PUBLIC, False):
        return await handler(request)
    token = _bearer_token(request)
    limiter = request.app[LIMITER]
    counter = address_counter(request, "api.token", request.app[CONFIG].limits.api_tokens)
    paused = await limiter.paused([counter])
    if paused is None:
        principal = await find_principal(request.app[DB], token, route.get("store"))
        if principal is not None:
            request[PRINCIPAL] = principal
            return await handler(request)
        counted = await limiter.reserve([counter])
        if not isinstance(counted, Refused):
            client = client_bucket(request)
            log.warning("unknown token", extra={"client": client, "path": request.path})
            reason = f"unknown bearer token from {client}"
            await record_rejection(
                request.app[DB], route.get("store", ""), request.path[:200], 401, reason, 0
            )
            raise ApiError(401, "unauthorized", "unknown token", _CHALLENGE)
        paused = counted
    log.warning(
        "paused: too many unknown tokens",
        extra={"client": client_bucket(request), "path": request.path},
    )
    wait = paused.retry_after(limiter.now())
    raise ApiError(
        429,
        "paused",
        f"too many unknown tokens from this address; try again in {wait} s",
        {**_CHALLENGE, **retry_headers(limiter, paused)},
    )


def require(request: web.Request, store_id: str, *, write: bool) -> Principal:
    """The caller, if they may read (or write) this store's data; 403 otherwise."""
    principal = request[PRINCIPAL]
    allowed = principal.can_write(store_id) if write else principal.can_read(store_id)
    if not allowed:
        log.warning(
            "forbidden",
            extra={"caller": f"{principal.kind} {principal.id}", "path": request.path},
        )
        what = "post events for" if write else "read"
        raise ApiError(403, "forbidden", f"this token may not {what} store {store_id!r}")
    return principal


def _bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if not header:
        raise ApiError(401, "unauthorized", "missing Authorization: Bearer <token>", _CHALLENGE)
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401, "unauthorized", "the Authorization header must be: Bearer <token>", _CHALLENGE
        )
    return token.strip()
