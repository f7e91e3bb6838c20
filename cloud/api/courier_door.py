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
from cloud.api.errors import ApiError
from cloud.api.openapi_ops import json_content as _json
from cloud.api.orders import ORDER_SERVICE
from cloud.api.stock import json_body
from cloud.bus import BUS
from cloud.couriers.door import (
    PLATFORMS,
    Claimed,
    CourierDesk,
    CourierDoor,
    delivery_view,
    find_door,
    pick_list,
)
from cloud.couriers.tail import normalize_tail
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
    body = await json_body(request)
    platform, day_seq, tail = body.get("platform"), body.get("day_seq"), body.get("tail")
    if platform not in PLATFORMS:
        raise ApiError(400, "bad_body", f"platform must be one of {', '.join(PLATFORMS)}")
    if isinstance(day_seq, bool) or not isinstance(day_seq, int) or not 0 < day_seq < 100000:
        raise ApiError(400, "bad_body", "day_seq must be the order's number of the day")
    typed = normalize_tail(tail) if isinstance(tail, str) else None
    if typed is None:
        raise ApiError(400, "bad_body", "tail must be the last 4 digits of the order number")
    result = await desk.claim(
        door,
        platform,
        day_seq,
        typed,
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


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


OPENAPI_SCHEMAS = {
    "CourierOrders": {
        "type": "object",
        "required": ["orders"],
        "properties": {
            "orders": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["platform", "day_seq", "ordered_at"],
                    "properties": {
                        "platform": {"enum": list(PLATFORMS)},
                        "day_seq": {"type": "integer", "description": "Number of the day."},
                        "ordered_at": {"type": "string", "format": "date-time"},
                    },
                },
            }
        },
    },
    "CourierClaim": {
        "type": "object",
        "required": ["platform", "day_seq", "tail"],
        "properties": {
            "platform": {"enum": list(PLATFORMS)},
            "day_seq": {"type": "integer", "minimum": 1},
            "tail": {"type": "string", "pattern": "^[0-9]{4}$"},
        },
    },
    "CourierClaimed": {
        "type": "object",
        "required": ["order", "opened", "pass", "items", "note"],
        "properties": {
            "order": {"type": "string"},
            "opened": {"type": "boolean", "description": "The agent opened the door now."},
            "pass": {"type": "string", "description": "Pickup pass (JWT) for the scanner."},
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "qty": {"type": "integer"},
                        "shelf": {"type": "string"},
                    },
                },
            },
            "note": {"type": "string"},
            "delivery": {
                "type": ["object", "null"],
                "description": "Where to deliver, the customer's number as the platform "
                "gives it (masked or virtual) and a map navigation link.",
                "properties": {
                    "address": {"type": "string"},
                    "contact": {"type": "string"},
                    "map": {"type": "string"},
                },
            },
        },
    },
}
OPENAPI = {
    f"GET {PATH}": {
        "tags": ["courier"],
        "operationId": "listCourierOrders",
        "summary": "The door's open pickup orders, nothing naming a customer (CONTRACTS 8)",
        "responses": {
            "200": _json(_ref("CourierOrders"), "Open orders of the last 24 hours."),
            "404": _json(_ref("Error"), "no_such_door"),
        },
    },
    f"POST {PATH}": {
        "tags": ["courier"],
        "operationId": "claimCourierOrder",
        "summary": "A courier claims their order with the last 4 digits of its number",
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ref("CourierClaim")}},
        },
        "responses": {
            "200": _json(_ref("CourierClaimed"), "The pass, and whether the door opened."),
            "400": _json(_ref("Error"), "bad_body"),
            "403": _json(_ref("Error"), "wrong_tail (with `left`)"),
            "404": _json(_ref("Error"), "no_such_order / no_such_door"),
            "429": _json(_ref("Error"), "paused, with Retry-After"),
        },
    },
}
