"""`POST /api/v1/platforms/{platform}/push`: the delivery platforms' webhooks.

No bearer token: each push is checked against its platform's signature instead (the
adapter's `verify`), then its signed time against `platforms.push_max_age_seconds` where
the platform signs one (`signed_at`). A push not signed by the platform is answered 401
bad_signature, one signed too long ago (or ahead) 401 stale_push, one that cannot be read
400 with the reason, a new order of a shop no store maps 400; each refusal is recorded in
the rejections table (store "", the endpoint naming the platform). An order the hub must
fetch from the platform and cannot is answered 503, so the platform pushes it again.
Every answer is in the platform's own shape (`reply_ok`, `refusal`); refusals also carry
the hub's `{"error": {"code", "message"}}`.

The order service lives on the application (`app[ORDER_SERVICE]`, as cloud/api/orders.py
reads it); it starts and stops with the application, with the platforms' HTTP clients.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from cloud.api.appkeys import CONFIG, DB
from cloud.api.auth import public
from cloud.api.errors import ApiError
from cloud.api.orders import ORDER_SERVICE
from cloud.db.events import record_rejection
from cloud.orders.service import OrderService
from cloud.platforms.base import (
    PlatformAdapter,
    PlatformAuthError,
    PlatformBadRequest,
    PlatformCallError,
    PlatformClient,
    PlatformStalePush,
    PushRequest,
    check_fresh,
)
from cloud.platforms.registry import configured_adapters

log = logging.getLogger("cloud.api.platforms")

PUSH_PATH = "/api/v1/platforms/{platform}/push"
ADAPTERS = web.AppKey("platform_adapters", dict[str, PlatformAdapter])
ORDERS = web.AppKey("orders", OrderService)


def add_routes(app: web.Application) -> None:
    """The push route, and the order service with a client per configured platform."""
    cfg = app[CONFIG]
    adapters = configured_adapters(cfg.platforms)
    clients: dict[str, PlatformClient] = {name: a.client() for name, a in adapters.items()}
    service = OrderService(cfg, app[DB], clients)
    app[ADAPTERS] = adapters
    app[ORDERS] = service
    app[ORDER_SERVICE] = service
    app.cleanup_ctx.append(_running(service, clients))
    app.router.add_post(PUSH_PATH, receive_push)


def _running(
    service: OrderService, clients: dict[str, PlatformClient]
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.close()
            for client in clients.values():
                await client.close()

    return ctx


@public
async def receive_push(request: web.Request) -> web.StreamResponse:
    name = request.match_info["platform"]
    adapter = request.app[ADAPTERS].get(name)
    if adapter is None:
        raise ApiError(
            404, "not_found", f"no platform {name[:40]!r} is configured (hub.yaml platforms:)"
        )
    service = request.app[ORDERS]
    cfg = request.app[CONFIG]
    body_bytes = request.content_length or 0
    push_request: PushRequest | None = None
    try:
        push_request = await PushRequest.from_request(request, cfg.http.public_url)
        body_bytes = len(push_request.body)
        if not adapter.creds.secret:
            # Anyone can compute a signature keyed with nothing: trust no push at all.
            raise PlatformAuthError(f"platforms.{name}.secret is empty on this hub")
        adapter.verify(push_request)
        sent = adapter.signed_at(push_request)
        if sent is not None:
            check_fresh(sent, now=time.time(), max_age=cfg.platforms.push_max_age_seconds)
        pushes = adapter.parse_pushes(push_request)
        for push in pushes:
            await service.ingest(push, source=f"{name}:push")
    except PlatformStalePush as e:
        await _reject(request, name, 401, f"stale push: {e}", body_bytes)
        message = f"the push is not fresh: {e}"
        return _refused(adapter, push_request, 401, "stale_push", message)
    except PlatformAuthError as e:
        await _reject(request, name, 401, f"bad signature: {e}", body_bytes)
        message = f"the push is not signed by {name}: {e}"
        return _refused(adapter, push_request, 401, "bad_signature", message)
    except PlatformBadRequest as e:
        await _reject(request, name, 400, str(e), body_bytes)
        return _refused(adapter, push_request, 400, "bad_push", str(e))
    except PlatformCallError as e:
        await _reject(request, name, 503, str(e), body_bytes)
        message = f"cannot take the order now: {e}"
        return _refused(adapter, push_request, 503, "unavailable", message, {"Retry-After": "30"})
    return adapter.reply_ok(pushes[-1])


def _refused(
    adapter: PlatformAdapter,
    push_request: PushRequest | None,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The refusal in the platform's own shape (so it knows to push again), with the hub's
    `error` object beside it (the shape of every other error the hub answers)."""
    fields = adapter.refusal(status, message, push_request)
    error = {**fields.get("error", {}), "code": code, "message": message}
    return web.json_response({**fields, "error": error}, status=status, headers=headers)


async def _reject(request: web.Request, platform: str, status: int, reason: str, size: int) -> None:
    log.warning(
        "platform push refused",
        extra={"platform": platform, "status": status, "reason": reason, "peer": request.remote},
    )
    await record_rejection(request.app[DB], "", request.path, status, reason, size)
