"""`GET /api/v1/stores/{store}/orders`: a store's orders, as its agent takes them.

`?status=pending` (or `cancelled`, `picked_up`; repeated or comma-separated for several;
absent: all) and `?updated_after=<RFC 3339>` filter. The answer is
`{"orders": [<order as orders.upsert carries it>, ...], "now": "<hub time>"}`: an agent
that was offline when orders were pushed catches up with it (agent/order_sync.py), and
passes `now` (less a margin) as its next `updated_after`, so its own clock does not
matter. The store's token or a merchant token listing the store may read.

Agents take orders only signed (anyone answering hub.url could otherwise plant a pickup
code): with `Accept: application/jwt` the answer is one compact JWS (`Content-Type:
application/jwt`) signed with the hub's key, as commands are: `iss` shopgate-hub, `aud`
the store, `scope` `orders.sync` (never a pass or a command), a fresh `jti`, `iat`,
`exp` = iat + SYNC_TTL_S, and the claim `sync` = {"orders", "now", "status",
"updated_after", "nonce"}: the answer, the question it answers (the statuses asked for
and `updated_after` as given) and the agent's `?nonce=`, echoed so that a recorded answer
cannot be replayed. Without that Accept the plain JSON stays, for merchants' scripts and
for agents older than signed sync during a rolling upgrade; an agent of this version
never takes it (docs/security.md, "What the agent trusts from the hub").
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Protocol

from aiohttp import web

from cloud.api.auth import require
from cloud.api.errors import ApiError
from cloud.api.hub_key import hub_signing_key, install
from cloud.db.times import now_text, utc_text
from cloud.signing import SYNC_SCOPE, sign_store_data

PATH = "/api/v1/stores/{store}/orders"
JWT = "application/jwt"
SYNC_TTL_S = 120  # the agent asks and applies at once; its clock skew is added on its side
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


class OrderReader(Protocol):
    """What these routes need of cloud/orders/service.py OrderService."""

    async def list_orders(
        self, store: str, *, status: str | None = None, updated_after: str | None = None
    ) -> list[Any]: ...

    async def get(self, store: str, order_id: str) -> Any: ...


ORDER_SERVICE = web.AppKey("order_service", OrderReader)


def order_service(app: web.Application) -> OrderReader:
    service = app.get(ORDER_SERVICE)
    if service is None:
        raise ApiError(503, "unavailable", "orders are not served by this hub yet")
    return service


STATUSES = frozenset({"pending", "picked_up", "cancelled", "refunded"})


def add_routes(app: web.Application) -> None:
    install(app)
    app.router.add_get(PATH, get_orders)


async def get_orders(request: web.Request) -> web.Response:
    store_id = request.match_info["store"]
    require(request, store_id, write=False)
    statuses = _statuses(request)
    updated_after = _time_query(request, "updated_after")
    signed = _wants_jwt(request)
    nonce = _nonce(request) if signed else None
    service = order_service(request.app)
    now = now_text()
    found: list[Any] = []
    wanted: list[str | None] = list(statuses) if statuses else [None]
    for status in wanted:
        found += await service.list_orders(store_id, status=status, updated_after=updated_after)
    orders = [o.to_agent() for o in found]
    if not signed:
        response = web.json_response({"orders": orders, "now": now})
    else:
        key, kid = await hub_signing_key(request.app)
        sync = {
            "orders": orders,
            "now": now,
            "status": statuses,
            "updated_after": request.query.get("updated_after") or None,
            "nonce": nonce,
        }
        token = sign_store_data(
            key, kid, store=store_id, scope=SYNC_SCOPE, claims={"sync": sync}, ttl=SYNC_TTL_S
        )
        response = web.Response(text=token, content_type=JWT)
    # The same URL answers in two forms, and neither may be kept by a cache on the way.
    response.headers["Vary"] = "Accept"
    response.headers["Cache-Control"] = "no-store"
    response.enable_compression()
    return response


def _wants_jwt(request: web.Request) -> bool:
    ranges = ",".join(request.headers.getall("Accept", []))
    return any(r.split(";")[0].strip().lower() == JWT for r in ranges.split(","))


def _nonce(request: web.Request) -> str | None:
    nonce = request.query.get("nonce")
    if nonce is None:
        return None
    if not _NONCE.match(nonce):
        raise ApiError(400, "bad_query", "nonce must be 16-128 letters, digits, - or _")
    return nonce


def _statuses(request: web.Request) -> list[str]:
    out: list[str] = []
    for value in request.query.getall("status", []):
        for s in value.split(","):
            s = s.strip()
            if s not in STATUSES:
                raise ApiError(
                    400,
                    "bad_query",
                    f"status must be one of {', '.join(sorted(STATUSES))}, got {s[:40]!r}",
                )
            if s not in out:
                out.append(s)
    return out


def _time_query(request: web.Request, name: str) -> str | None:
    text = request.query.get(name)
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ApiError(
            400, "bad_query", f"{name} must be an RFC 3339 time with an offset, got {shown!r}"
        )
    return utc_text(when)
