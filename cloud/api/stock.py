"""A store's stock: quantities, the ledger, movements by hand, restore, platform pushes.

    GET  /api/v1/stores/{store}/stock                       every item: qty, low-stock flag
    GET  /api/v1/stores/{store}/stock/{barcode}             one item and its newest entries
    POST /api/v1/stores/{store}/stock/{barcode}             {"delta": N | "qty": N, "reason":
                                                             restock|adjust|manual, "key"?, "note"?}
    POST /api/v1/stores/{store}/orders/{order}/restore-stock   一键恢复库存, once per order
    GET  /api/v1/stores/{store}/stock-push                  each platform SKU's push state

The owner (a merchant token listing the store) or the store itself may read and write.
A movement's `key` makes it idempotent: the same key books nothing the second time
(a stock-take sheet's id, say); without one each request is a new movement.

This module also builds the hub's StockService (cloud/stock/service.py) and hooks it to
the event ingest and the order service; call add_routes after events and platforms.
"""

from __future__ import annotations

import uuid

from aiohttp import web

from cloud.api.appkeys import PRINCIPAL, STOCK_LEDGER
from cloud.api.auth import require
from cloud.api.bodies.base import read_body
from cloud.api.bodies.stock import Movement
from cloud.api.errors import ApiError
from cloud.api.platforms import ORDERS
from cloud.stock.feed import RestoreError
from cloud.stock.ledger import LedgerError
from cloud.stock.service import StockService

STOCK_SERVICE = web.AppKey("stock_service", StockService)
BASE = "/api/v1/stores/{store}"
MAX_ENTRIES = 1000


def add_routes(app: web.Application) -> None:
    app.router.add_get(BASE + "/stock", list_stock)
    app.router.add_get(BASE + "/stock/{barcode}", get_item)
    app.router.add_post(BASE + "/stock/{barcode}", move_item)
    app.router.add_post(BASE + "/orders/{order}/restore-stock", restore_order)
    app.router.add_get(BASE + "/stock-push", push_state)


def owner_of(request: web.Request) -> str:
    """The store of the URL, if the caller is its owner or the store itself."""
    store = request.match_info["store"]
    require(request, store, write=False)
    return store


async def list_stock(request: web.Request) -> web.Response:
    store = owner_of(request)
    service = request.app[STOCK_SERVICE]
    quantities = await service.ledger.quantities(store)
    products = {p.barcode: p for p in await service.catalog.products(store)}
    items = []
    for barcode in sorted(set(quantities) | set(products)):
        product = products.get(barcode)
        qty = quantities.get(barcode, 0)
        low = product.low_stock if product is not None else None
        items.append(
            {
                "barcode": barcode,
                "name": product.name if product is not None else None,
                "shelf": product.shelf if product is not None else None,
                "qty": qty,
                "low_stock": low,
                "low": low is not None and qty <= low,
            }
        )
    return web.json_response({"stock": items})


async def get_item(request: web.Request) -> web.Response:
    store = owner_of(request)
    barcode = request.match_info["barcode"]
    limit = request.query.get("limit", "100")
    if not (limit.isdigit() and 1 <= int(limit) <= MAX_ENTRIES):
        raise ApiError(400, "bad_query", f"limit must be from 1 to {MAX_ENTRIES}")
    ledger = request.app[STOCK_LEDGER]
    entries = await ledger.entries(store, barcode, int(limit))
    qty = await ledger.quantity(store, barcode)
    return web.json_response(
        {"barcode": barcode, "qty": qty, "entries": [e.to_json() for e in entries]}
    )


async def move_item(request: web.Request) -> web.Response:
    store = owner_of(request)
    barcode = request.match_info["barcode"]
    body = await read_body(request, Movement)
    principal = request[PRINCIPAL]
    note = (body.note + " " if body.note else "") + f"by {principal.kind} {principal.id}"
    source = f"api:{body.key}" if body.key else f"api:{uuid.uuid4().hex}"
    ledger = request.app[STOCK_LEDGER]
    reason = body.reason
    has_delta = body.delta is not None
    value = body.delta if body.delta is not None else body.qty
    assert value is not None  # the model takes exactly one of them
    try:
        if has_delta:
            entry = await ledger.record(store, barcode, value, reason, source, note=note)
        else:
            entry = await ledger.set_quantity(store, barcode, value, reason, source, note=note)
    except LedgerError as e:
        raise ApiError(400, "bad_body", str(e)) from None
    qty = await ledger.quantity(store, barcode)
    if entry is None:
        return web.json_response({"duplicate": True, "qty": qty})
    return web.json_response({"duplicate": False, "qty": qty, "entry": entry.to_json()})


async def restore_order(request: web.Request) -> web.Response:
    store = owner_of(request)
    order_id = request.match_info["order"]
    orders = request.app.get(ORDERS)
    order = None if orders is None else await orders.get(store, order_id)
    if order is None:
        raise ApiError(404, "not_found", f"store {store} has no order {order_id[:80]!r}")
    principal = request[PRINCIPAL]
    try:
        entries = await request.app[STOCK_SERVICE].feed.restore(
            order, by=f"{principal.kind} {principal.id}"
        )
    except RestoreError as e:
        raise ApiError(409, "conflict", str(e)) from None
    return web.json_response({"order": order_id, "restored": [e.to_json() for e in entries]})


async def push_state(request: web.Request) -> web.Response:
    store = owner_of(request)
    state = await request.app[STOCK_SERVICE].push.state(store)
    return web.json_response({"push": state})
