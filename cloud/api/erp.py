"""The ERP sync on the application, and its routes.

    erp.attach(app)        # in create_app: the routes (cloud/root.py builds and runs the sync)

- `GET /api/v1/erp/failures`: ERP pushes not sent, with the ERP's reason (waiting to
  retry, failed, unsupported), of every store the caller may read.
- `GET /api/v1/stores/{store}/erp/failures`: the same, for one store.
- `POST /api/v1/stores/{store}/erp/products`: push the store's products to its ERP in
  one go (the hub catalog, or `{"products": [{barcode, name, price, cost?}]}` in fen).

The composition root (cloud/root.py) makes the ERP clients from hub.yaml (erp:), runs the
outbox worker and has the sync follow the order service, the stores' events and the stock
ledger; the stock poller runs for stores whose ERP is right about stock
(stores[].erp.stock_source: erp).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from cloud.api.appkeys import PRINCIPAL
from cloud.api.auth import require
from cloud.api.bodies.base import parse
from cloud.api.bodies.erp import ErpProducts
from cloud.api.errors import ApiError
from cloud.erp.base import ErpError, Product
from cloud.erp.sync import ErpSync

log = logging.getLogger("cloud.api.erp")

ERP_SYNC = web.AppKey("erp_sync", ErpSync)
FAILURES_PATH = "/api/v1/erp/failures"
STORE_FAILURES_PATH = "/api/v1/stores/{store}/erp/failures"
PRODUCTS_PATH = "/api/v1/stores/{store}/erp/products"


def attach(app: web.Application) -> None:
    """Add the routes; the ERP sync itself is built and run by cloud/root.py."""
    app.router.add_get(FAILURES_PATH, all_failures)
    app.router.add_get(STORE_FAILURES_PATH, store_failures)
    app.router.add_post(PRODUCTS_PATH, push_products)


def _sync(request: web.Request) -> ErpSync:
    sync = request.app.get(ERP_SYNC)
    if sync is None:
        raise ApiError(503, "unavailable", "the ERP sync is not running")
    return sync


async def all_failures(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    found = await _sync(request).outbox.failures()
    mine = [f for f in found if principal.can_read(f["store"])]
    return web.json_response({"failures": [_failure(f) for f in mine]})


async def store_failures(request: web.Request) -> web.Response:
    store = request.match_info["store"]
    require(request, store, write=False)
    found = await _sync(request).outbox.failures(store)
    return web.json_response({"failures": [_failure(f) for f in found]})


def _failure(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": row["key"],
        "erp": row["erp"],
        "store": row["store"],
        "kind": row["kind"],
        "ref": row["ref"],
        "status": row["status"],
        "attempts": row["attempts"],
        "error": row["error"],
        "next_try": row["next_try"] if row["status"] == "pending" else None,
        "since": row["created_at"],
    }


async def push_products(request: web.Request) -> web.Response:
    store = request.match_info["store"]
    # The owner's action: whoever may read the store (its merchant, or the store).
    require(request, store, write=False)
    products = await _products_from(request)
    try:
        queued, count = await _sync(request).push_products(store, products)
    except ErpError as e:
        raise ApiError(409, "no_erp", str(e)) from None
    return web.json_response({"queued": queued, "products": count}, status=202)


async def _products_from(request: web.Request) -> list[Product] | None:
    if not request.can_read_body:
        return None
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "bad_request", "the body is not JSON") from None
    if not isinstance(body, dict) or "products" not in body:
        return None
    return [p.product() for p in parse(ErpProducts, body, code="bad_request").products]
