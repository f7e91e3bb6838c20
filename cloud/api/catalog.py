"""A store's catalog and platform SKU mapping (docs/stock.md).

    GET  /api/v1/stores/{store}/catalog              {"products": [...], "delivery": {...}}
    POST /api/v1/stores/{store}/catalog              {"products": [{barcode, name, price, ...}]}
    GET  /api/v1/stores/{store}/catalog/{barcode}
    PUT  /api/v1/stores/{store}/catalog/{barcode}    {name, price, cost?, shelf?, low_stock?}
    POST /api/v1/stores/{store}/catalog/import       a CSV file (the body, or a multipart
                                                     form's `file`): UTF-8 / GBK, 中文 headers
    GET  /api/v1/stores/{store}/skus                 {"skus": [...], "unmatched": [...]}
    POST /api/v1/stores/{store}/skus                 {"skus": [{platform, sku, upc?, name?,
                                                     barcode?}]}: list or map platform SKUs

Prices are yuan (3.5 = ¥3.50). A body with a bad product is refused whole, naming it;
an import takes the good rows and reports each bad one by row number with the reason.
Changed products go to the store's agent as `catalog.upsert`. The owner (a merchant
token listing the store) or the store itself may read and write.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from cloud.api.bodies.base import parse, read_body, read_json
from cloud.api.bodies.catalog import ProductIn, ProductsIn, SkusIn
from cloud.api.errors import ApiError
from cloud.api.stock import STOCK_SERVICE, owner_of
from cloud.stock.csv_import import CatalogFileError, parse_products
from cloud.stock.product import Product, ProductError

BASE = "/api/v1/stores/{store}"
# Above this, parsing takes long enough (milliseconds) to move off the event loop.
_PARSE_IN_THREAD_BYTES = 64 * 1024


def add_routes(app: web.Application) -> None:
    app.router.add_get(BASE + "/catalog", list_products)
    app.router.add_post(BASE + "/catalog", upsert_products)
    app.router.add_post(BASE + "/catalog/import", import_products)
    app.router.add_get(BASE + "/catalog/{barcode}", get_product)
    app.router.add_put(BASE + "/catalog/{barcode}", put_product)
    app.router.add_get(BASE + "/skus", list_skus)
    app.router.add_post(BASE + "/skus", map_skus)


async def list_products(request: web.Request) -> web.Response:
    store = owner_of(request)
    service = request.app[STOCK_SERVICE]
    products = await service.catalog.products(store)
    quantities = await service.ledger.quantities(store)
    return web.json_response(
        {
            "products": [_with_stock(p, quantities.get(p.barcode, 0)) for p in products],
            "delivery": service.to_store.status(store),
        }
    )


def _with_stock(product: Product, qty: int) -> dict[str, Any]:
    low = product.low_stock is not None and qty <= product.low_stock
    return {**product.to_json(), "qty": qty, "low": low}


async def get_product(request: web.Request) -> web.Response:
    store = owner_of(request)
    barcode = request.match_info["barcode"]
    service = request.app[STOCK_SERVICE]
    product = await service.catalog.get(store, barcode)
    if product is None:
        raise ApiError(404, "not_found", f"store {store} has no product {barcode[:64]!r}")
    return web.json_response(_with_stock(product, await service.ledger.quantity(store, barcode)))


async def put_product(request: web.Request) -> web.Response:
    store = owner_of(request)
    body = await read_json(request)
    if isinstance(body, dict):  # the URL names the product, whatever the body says
        body = {**body, "barcode": request.match_info["barcode"]}
    product = parse(ProductIn, body).product()
    changed = await request.app[STOCK_SERVICE].upsert_products(store, [product])
    return web.json_response({**product.to_json(), "changed": bool(changed)})


async def upsert_products(request: web.Request) -> web.Response:
    store = owner_of(request)
    body = await read_body(request, ProductsIn)
    products = [p.product() for p in body.products]
    changed = await request.app[STOCK_SERVICE].upsert_products(store, products)
    return web.json_response({"upserted": len(products), "changed": len(changed)})


async def import_products(request: web.Request) -> web.Response:
    store = owner_of(request)
    data = await _file_bytes(request)
    try:
        if len(data) > _PARSE_IN_THREAD_BYTES:
            result = await asyncio.to_thread(parse_products, data)
        else:
            result = parse_products(data)
    except CatalogFileError as e:
        raise ApiError(400, "bad_file", str(e)) from None
    changed = await request.app[STOCK_SERVICE].upsert_products(store, result.products)
    return web.json_response(
        {
            "imported": len(result.products),
            "changed": len(changed),
            "errors": [e.to_json() for e in result.errors],
            "encoding": result.encoding,
        }
    )


async def _file_bytes(request: web.Request) -> bytes:
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        async for part in reader:
            if getattr(part, "name", None) == "file":
                # A named part is a body part, not a nested multipart reader.
                return bytes(await part.read())  # type: ignore[union-attr]
        raise ApiError(400, "bad_file", 'the form has no "file" field')
    data = await request.read()
    if not data:
        raise ApiError(400, "bad_file", "the body is empty: send the CSV file")
    return data


async def list_skus(request: web.Request) -> web.Response:
    store = owner_of(request)
    catalog = request.app[STOCK_SERVICE].catalog
    skus = await catalog.skus(store)
    return web.json_response(
        {
            "skus": [s.to_json() for s in skus],
            "unmatched": [s.to_json() for s in skus if not s.barcode],
        }
    )


async def map_skus(request: web.Request) -> web.Response:
    store = owner_of(request)
    body = await read_body(request, SkusIn)
    listings = [sku.listing() for sku in body.skus]
    try:
        mappings = await request.app[STOCK_SERVICE].map_skus(store, listings)
    except ProductError as e:
        raise ApiError(400, "bad_sku", str(e)) from None
    return web.json_response(
        {
            "skus": [m.to_json() for m in mappings],
            "unmatched": [m.to_json() for m in mappings if not m.barcode],
        }
    )
