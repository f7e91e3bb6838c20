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

The adapters and the order service are built by the composition root (cloud/root.py),
which starts and stops them with the application.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from cloud.api.appkeys import CONFIG, DB
from cloud.api.auth import public
from cloud.api.errors import ApiError
from cloud.db.events import record_rejection
from cloud.orders.service import OrderService
from cloud.platforms.base import (
    PlatformAdapter,
    PlatformAuthError,
    PlatformBadRequest,
    PlatformCallError,
    PlatformStalePush,
    PushRequest,
    check_fresh,
)

log = logging.getLogger("cloud.api.platforms")

PUSH_PATH = "/api/v1/platforms/{platform}/push"
ADAPTERS = web.AppKey("platform_adapters", dict[str, PlatformAdapter])
ORDERS = web.AppKey("orders", OrderService)


def add_routes(app: web.Application) -> None:
    """The push route; the adapters and the order service come from cloud/root.py."""
    app.router.add_post(PUSH_PATH, receive_push)


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
