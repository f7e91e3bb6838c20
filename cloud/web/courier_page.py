"""The courier side of the door poster, `/s/{store}/{door}/courier` (骑手扫码取货).

GET lists the door's open pickup orders (platform, number of the day, time ordered:
nothing naming a customer); each has a box for the last 4 digits of the platform order
number. POST claims one through the courier desk (cloud/couriers: counted like a wrong
answer before it is checked), and shows 门已打开 with the pick list (shelf, item, qty),
the customer's note and the pickup pass as a QR for the door's scanner (the only way in
when the store is offline). Plain HTML forms, no script.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import web

from cloud.api.appkeys import CONFIG
from cloud.api.auth import public
from cloud.api.courier_door import COURIER_DESK, visitor_of
from cloud.bus import BUS
from cloud.couriers.door import (
    PLATFORM_NAMES,
    PLATFORMS,
    Claimed,
    CourierDesk,
    CourierDoor,
    delivery_view,
    find_door,
    pick_list,
)
from cloud.couriers.tail import normalize_tail
from cloud.limits.web import client_bucket
from cloud.web.pages import Pages
from cloud.web.pass_qr import pass_svg

log = logging.getLogger("cloud.web.courier")

PAGES = web.AppKey("courier_pages", Pages)
MAX_FORM_BYTES = 4 * 1024


def add_routes(app: web.Application) -> None:
    app.on_startup.append(_load)
    app.router.add_get("/s/{store}/{door}/courier", courier_list)
    app.router.add_post("/s/{store}/{door}/courier", courier_claim)


async def _load(app: web.Application) -> None:
    pages = Pages(("courier_list.html", "courier_done.html", "message.html"))
    await asyncio.to_thread(pages.load)
    app[PAGES] = pages


def _door(request: web.Request) -> tuple[CourierDesk, CourierDoor] | None:
    door = find_door(
        request.app[CONFIG].stores, request.match_info["store"], request.match_info["door"]
    )
    desk = request.app.get(COURIER_DESK)
    return None if door is None or desk is None else (desk, door)


def _entry_path(door: CourierDoor) -> str:
    return f"/s/{quote(door.store.id)}/{quote(door.door)}"


async def _list_page(
    request: web.Request,
    desk: CourierDesk,
    door: CourierDoor,
    *,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    zone = ZoneInfo(door.store.timezone)
    listed = []
    for o in await desk.open_orders(door):
        at = dt.datetime.fromisoformat(o.created_at.replace("Z", "+00:00")).astimezone(zone)
        listed.append(
            {
                "platform": o.platform,
                "platform_name": PLATFORM_NAMES.get(o.platform, o.platform),
                "day_seq": o.day_seq,
                "time": at.strftime("%H:%M"),
            }
        )
    path = _entry_path(door)
    return request.app[PAGES].render(
        "courier_list.html",
        status=status,
        store_name=door.store.name or door.store.id,
        orders=listed,
        error=error,
        action=f"{path}/courier",
        entry_url=path,
        help_url=door.store.courier_help_url,
    )


def _not_found(request: web.Request) -> web.Response:
    return request.app[PAGES].render(
        "message.html",
        status=404,
        store_name="",
        title="找不到这个门",
        message="请重新扫描门上的二维码。",
        again_url=None,
    )


@public
async def courier_list(request: web.Request) -> web.StreamResponse:
    found = _door(request)
    if found is None:
        return _not_found(request)
    return await _list_page(request, *found)


@public
async def courier_claim(request: web.Request) -> web.StreamResponse:
    found = _door(request)
    if found is None:
        return _not_found(request)
    desk, door = found
    if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
        return await _list_page(request, desk, door, error="内容过长", status=413)
    try:
        form = await request.post()
    except ValueError:
        return await _list_page(request, desk, door, error="无法读取，请重试", status=400)
    platform = str(form.get("platform", ""))
    day_text = str(form.get("day_seq", ""))
    tail = normalize_tail(str(form.get("tail", "")))
    if platform not in PLATFORMS or not day_text.isdigit() or not 0 < int(day_text) < 100000:
        return await _list_page(request, desk, door, error="请从列表中选择订单", status=400)
    if tail is None:
        return await _list_page(request, desk, door, error="请输入订单号的后四位数字", status=400)
    result = await desk.claim(
        door,
        platform,
        int(day_text),
        tail,
        visitor=visitor_of(request),
        address=client_bucket(request),
        bus=request.app.get(BUS),
    )
    if not isinstance(result, Claimed):
        # A wrong tail is an answer to show, not a failed page (as a wrong answer is on
        # the entry page); a pause is a 429 for whoever reads statuses.
        status = 429 if result.status == 429 else 200
        response = await _list_page(request, desk, door, error=result.message, status=status)
        if result.retry_after is not None:
            response.headers["Retry-After"] = str(result.retry_after)
        return response
    order = result.order
    return request.app[PAGES].render(
        "courier_done.html",
        store_name=door.store.name or door.store.id,
        platform_name=PLATFORM_NAMES.get(order.platform, order.platform),
        day_seq=order.day_seq,
        opened=result.opened is True,
        items=pick_list(order),
        note=order.note,
        delivery=delivery_view(order),
        qr_svg=pass_svg(result.token, label="取货二维码"),
        minutes=max(1, desk.pass_ttl_s // 60),
        help_url=door.store.courier_help_url,
    )
