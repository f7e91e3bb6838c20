"""The courier at the door, for programs (CONTRACTS section 8; cloud/couriers).

`GET /api/v1/stores/{store}/doors/{door}/courier` -> `{"orders": [{"platform", "day_seq",
"ordered_at"}]}`: the door's open pickup orders of the last 24 hours, nothing that names
a customer. `POST` the same path `{"platform", "day_seq", "tail"}` -> 200 `{"order",
"opened", "pass", "items": [{"name", "qty", "shelf"}], "note"}`; 403 `wrong_tail`, 404
`no_such_order` / `no_such_door`, 429 `paused` with Retry-After, 400 `bad_body`. No
credentials: the courier is anonymous, and limited as a wrong answer is.
"""

from __future__ import annotations

import asyncio
import re

from aiohttp import web

from cloud import signing
from cloud.api.appkeys import CONFIG
from cloud.api.auth import public
from cloud.api.bodies.base import read_body
from cloud.api.bodies.courier import CourierClaim
from cloud.api.errors import ApiError
from cloud.api.orders import ORDER_SERVICE
from cloud.bus import BUS
from cloud.couriers.door import (
    Claimed,
    CourierDesk,
    CourierDoor,
    delivery_view,
    find_door,
    pick_list,
)
from cloud.limits.web import LIMITER, client_bucket
from cloud.web.entry import VISITOR_COOKIE

PATH = "/api/v1/stores/{store}/doors/{door}/courier"
COURIER_DESK = web.AppKey("courier_desk", CourierDesk)
_VISITOR_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def add_routes(app: web.Application) -> None:
    """The desk is built at startup, once the order service is on the app."""
    app.on_startup.append(_build)
    app.router.add_get(PATH, list_open)
    app.router.add_post(PATH, claim)


async def _build(app: web.Application) -> None:
    cfg = app[CONFIG]
    orders = app.get(ORDER_SERVICE)
    if orders is None or not any(store.entry is not None for store in cfg.stores):
        return  # no store has a door poster page: no courier side either
    key, kid = await asyncio.to_thread(
        signing.load_private_key, cfg.signing.key_file, cfg.signing.kid
    )
    app[COURIER_DESK] = CourierDesk(
        orders,  # type: ignore[arg-type]  # the OrderService, stored under OrderReader's key
        app[LIMITER],
        key,
        kid,
        pass_ttl_s=cfg.courier.pass_ttl_seconds,
    )


def desk_and_door(request: web.Request) -> tuple[CourierDesk, CourierDoor]:
    store, door_id = request.match_info["store"], request.match_info["door"]
    door = find_door(request.app[CONFIG].stores, store, door_id)
    desk = request.app.get(COURIER_DESK)
    if door is None or desk is None:
        raise ApiError(404, "no_such_door", f"store {store!r} has no door poster {door_id!r}")
    return desk, door


def visitor_of(request: web.Request) -> str:
    """The browser's visitor cookie; a program without one counts as its address."""
    cookie = request.cookies.get(VISITOR_COOKIE)
    return cookie if cookie and _VISITOR_ID.match(cookie) else f"addr:{client_bucket(request)}"


@public
async def list_open(request: web.Request) -> web.Response:
    desk, door = desk_and_door(request)
    orders = await desk.open_orders(door)
    return web.json_response(
        {
            "orders": [
                {"platform": o.platform, "day_seq": o.day_seq, "ordered_at": o.created_at}
                for o in orders
            ]
        }
    )


@public
async def claim(request: web.Request) -> web.Response:
    desk, door = desk_and_door(request)
    body = await read_body(request, CourierClaim)
    result = await desk.claim(
        door,
        body.platform,
        body.day_seq,
        body.tail,
        visitor=visitor_of(request),
        address=client_bucket(request),
        bus=request.app.get(BUS),
    )
    if not isinstance(result, Claimed):
        headers = None
        if result.retry_after is not None:
            headers = {"Retry-After": str(result.retry_after)}
        raise ApiError(result.status, result.code, result.message, headers, left=result.left)
    order = result.order
    return web.json_response(
        {
            "order": order.id,
            "opened": result.opened is True,
            "pass": result.token,
            "items": pick_list(order),
            "note": order.note,
            # Extension: where to deliver and whom to call, as the platform gives it.
            "delivery": delivery_view(order),
        }
    )
