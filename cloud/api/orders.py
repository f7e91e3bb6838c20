"""`GET /api/v1/stores/{store}/orders`: a store's orders, as its agent takes them.

`?status=pending` (or `cancelled`, `picked_up`; repeated or comma-separated for several;
absent: all) and `?updated_after=<RFC 3339>` filter. The answer is
`{"orders": [<order as orders.upsert carries it>, ...], "now": "<hub time>"}`: an agent
that was offline when orders were pushed catches up with it (agent/order_sync.py), and
passes `now` (less a margin) as its next `updated_after`, so its own clock does not
matter. The store's token or a merchant token listing the store may read.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from aiohttp import web

from cloud.api.auth import require
from cloud.api.errors import ApiError
from cloud.db.times import now_text, utc_text

PATH = "/api/v1/stores/{store}/orders"


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
    app.router.add_get(PATH, get_orders)


async def get_orders(request: web.Request) -> web.Response:
    store_id = request.match_info["store"]
    require(request, store_id, write=False)
    statuses = _statuses(request)
    updated_after = _time_query(request, "updated_after")
    service = order_service(request.app)
    now = now_text()
    found: list[Any] = []
    for status in statuses or [None]:
        found += await service.list_orders(store_id, status=status, updated_after=updated_after)
    response = web.json_response({"orders": [o.to_agent() for o in found], "now": now})
    response.enable_compression()
    return response


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
