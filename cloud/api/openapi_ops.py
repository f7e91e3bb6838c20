"""What the hub's API routes take and answer, for the OpenAPI document (openapi.py).

Keyed `"METHOD /path"` as aiohttp spells the path. These are the routes of the modules
that came before the document, and of the stock, catalog and payment modules; a module
may instead keep its own words next to its routes (`OPENAPI`, `OPENAPI_SCHEMAS`, as
cloud/api/erp.py does), which win over these.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Operation = dict[str, Any]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: Mapping[str, Any], description: str) -> dict[str, Any]:
    """A response (or request body) described by `schema`, as application/json."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_json = json_content


def error_response(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "description": "Every error answer (CONTRACTS section 3's shape).",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "examples": ["forbidden"]},
                    "message": {"type": "string"},
                },
                "additionalProperties": True,
            }
        },
    },
    "Event": {
        "type": "object",
        "description": "An agent's event (CONTRACTS section 4); given back exactly as sent.",
        "required": ["id", "store", "seq", "ts", "type", "data"],
        "properties": {
            "id": {"type": "string", "maxLength": 128, "description": "Unique, time-ordered."},
            "store": {"type": "string"},
            "seq": {"type": "integer", "minimum": 1, "description": "Per-store counter."},
            "ts": {"type": "string", "format": "date-time"},
            "type": {"type": "string", "examples": ["access.granted", "sale.completed"]},
            "data": {"type": "object"},
        },
    },
    "EventBatch": {
        "type": "object",
        "required": ["events"],
        "properties": {"events": {"type": "array", "items": _ref("Event")}},
    },
    "EventsAccepted": {
        "type": "object",
        "required": ["accepted", "duplicates"],
        "properties": {
            "accepted": {"type": "integer", "minimum": 0},
            "duplicates": {"type": "integer", "minimum": 0},
        },
    },
    "OrderItem": {
        "type": "object",
        "required": ["barcode", "name", "qty"],
        "properties": {
            "barcode": {"type": "string"},
            "name": {"type": "string"},
            "qty": {"type": "integer"},
            "shelf": {"type": "string", "description": "货架号"},
        },
    },
    "Order": {
        "type": "object",
        "description": "A platform order as `orders.upsert` carries it (CONTRACTS section 3).",
        "required": ["id", "platform", "platform_order_id", "day_seq", "pickup_code", "status"],
        "properties": {
            "id": {"type": "string", "examples": ["meituan-27001"]},
            "platform": {"enum": ["meituan", "eleme", "jddj", "douyin", "local"]},
            "platform_order_id": {"type": "string"},
            "day_seq": {"type": "integer"},
            "pickup_code": {"type": "string", "pattern": "^[0-9]+$"},
            "status": {"enum": ["pending", "picked_up", "cancelled"]},
            "items": {"type": "array", "items": _ref("OrderItem")},
            "note": {"type": "string"},
        },
    },
    "OrderList": {
        "type": "object",
        "required": ["orders", "now"],
        "properties": {
            "orders": {"type": "array", "items": _ref("Order")},
            "now": {
                "type": "string",
                "format": "date-time",
                "description": "The hub's time: pass it (less a margin) as the next updated_after.",
            },
        },
    },
    "PickupPass": {
        "type": "object",
        "required": ["pass", "qr_svg", "expires_at", "order", "link"],
        "properties": {
            "pass": {"type": "string", "description": "A pickup pass (CONTRACTS section 2)."},
            "qr_svg": {"type": "string", "description": "The pass as an SVG QR code."},
            "expires_at": {"type": "string", "format": "date-time"},
            "order": {"type": "string"},
            "pickup_code": {"type": ["string", "null"]},
            "day_seq": {"type": ["integer", "null"]},
            "link": {"type": "string", "description": "The signed courier page path."},
        },
    },
    "PlatformReply": {
        "description": "The answer in the pushing platform's own shape "
        '(Meituan `{"data": "ok"}`, Eleme, JD Daojia and Douyin theirs).',
        "type": ["object", "string"],
    },
    "OpenApiDocument": {"type": "object", "description": "This document."},
}

STORE_READ: list[dict[str, list[str]]] = [{"storeToken": []}, {"merchantToken": []}]
STORE_WRITE: list[dict[str, list[str]]] = [{"storeToken": []}]

OPERATIONS: dict[str, Operation] = {
    "POST /api/v1/stores/{store}/events": {
        "tags": ["events"],
        "operationId": "postEvents",
        "summary": "An agent posts a batch of its events",
        "description": "Taken whole or not at all; each event id is stored once "
        "(resent events count as duplicates). Gzip bodies (`Content-Encoding: gzip`) "
        "are accepted; the size limit applies after decompression. Only the store's own "
        "token may post.",
        "security": STORE_WRITE,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ref("EventBatch")}},
        },
        "responses": {
            "200": _json(_ref("EventsAccepted"), "Stored (new ones) or known (duplicates)."),
            "400": error_response("A bad event; `index` and `field` name the first one."),
            "413": error_response("The body is too large; send smaller batches."),
        },
    },
    "GET /api/v1/stores/{store}/events": {
        "tags": ["events"],
        "operationId": "listEvents",
        "summary": "A store's events, in seq order",
        "security": STORE_READ,
        "parameters": [
            {
                "name": "after_seq",
                "in": "query",
                "description": "Only events with a greater seq (default 0).",
                "schema": {"type": "integer", "minimum": 0},
            },
            {
                "name": "limit",
                "in": "query",
                "description": "At most this many (default 500).",
                "schema": {"type": "integer", "minimum": 1, "maximum": 5000},
            },
        ],
        "responses": {
            "200": _json(
                {
                    "type": "object",
                    "required": ["events"],
                    "properties": {"events": {"type": "array", "items": _ref("Event")}},
                },
                "The events, as the agent sent them.",
            ),
            "400": error_response("A bad query parameter."),
        },
    },
    "GET /api/v1/stores/{store}/orders": {
        "tags": ["orders"],
        "operationId": "listOrders",
        "summary": "A store's platform orders, as its agent takes them",
        "security": STORE_READ,
        "parameters": [
            {
                "name": "status",
                "in": "query",
                "description": "pending, picked_up, cancelled or refunded; repeated or "
                "comma-separated for several; absent: all.",
                "schema": {"type": "string"},
                "style": "form",
                "explode": True,
            },
            {
                "name": "updated_after",
                "in": "query",
                "description": "Only orders changed after this RFC 3339 time (with offset).",
                "schema": {"type": "string", "format": "date-time"},
            },
            {
                "name": "nonce",
                "in": "query",
                "description": "With Accept: application/jwt, echoed in the signed answer's "
                "`sync.nonce`: the agent's proof that the answer is to this request.",
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,128}$"},
            },
        ],
        "responses": {
            "200": {
                "description": "The orders, oldest change first. With Accept: "
                "application/jwt, one compact JWS signed with the hub's key (what agents "
                "take): scope `orders.sync`, aud the store, claim `sync` = {orders, now, "
                "status, updated_after, nonce}.",
                "content": {
                    "application/json": {"schema": _ref("OrderList")},
                    "application/jwt": {"schema": {"type": "string"}},
                },
            },
            "400": error_response("A bad query parameter."),
            "503": error_response("This hub serves no orders."),
        },
    },
    "GET /api/v1/stores/{store}/orders/{order_id}/pickup-pass": {
        "tags": ["orders"],
        "operationId": "getPickupPass",
        "summary": "A courier's pickup pass for one pending order",
        "security": STORE_READ,
        "parameters": [
            {
                "name": "courier",
                "in": "query",
                "description": "The courier's id, as the pass's `sub` "
                "(default courier:<platform>).",
                "schema": {"type": "string", "maxLength": 100},
            }
        ],
        "responses": {
            "200": _json(_ref("PickupPass"), "A fresh pass, valid courier.pass_ttl_seconds."),
            "404": error_response("No such order in this store."),
            "409": error_response("The order is no longer pending."),
        },
    },
    "POST /api/v1/platforms/{platform}/push": {
        "tags": ["platforms"],
        "operationId": "receivePlatformPush",
        "summary": "A delivery platform's webhook (new order, cancellation, refund, status)",
        "description": "No bearer token: each push is checked against its platform's "
        "signature (see the platformSignature scheme). Answered in the platform's own shape; "
        "a refusal carries the platform's failure fields (Meituan data ng, Eleme errno, JD "
        "Daojia and Douyin code) beside the hub's error object.",
        "security": [{"platformSignature": []}],
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                "application/json": {"schema": {"type": "object"}},
            },
        },
        "responses": {
            "200": _json(_ref("PlatformReply"), "Taken."),
            "400": error_response("Unreadable, or an order of a shop no store maps."),
            "401": error_response(
                "bad_signature: not signed by the platform; stale_push: signed too long ago."
            ),
            "404": error_response("That platform is not configured."),
            "503": error_response("The order could not be fetched from the platform; push again."),
        },
    },
    "GET /api/v1/openapi.json": {
        "tags": ["meta"],
        "operationId": "getOpenApi",
        "summary": "This document",
        "responses": {"200": _json(_ref("OpenApiDocument"), "The OpenAPI 3.1 document.")},
    },
    "GET /healthz": {
        "tags": ["meta"],
        "operationId": "healthz",
        "summary": "Is the hub up and does its database answer",
        "responses": {
            "200": _json(
                {
                    "type": "object",
                    "required": ["ok", "db", "version"],
                    "properties": {
                        "ok": {"type": "boolean"},
                        "db": {"enum": ["sqlite", "postgresql"]},
                        "version": {"type": "string"},
                    },
                },
                "Healthy.",
            ),
            "503": _json({"type": "object"}, "The database does not answer."),
        },
    },
}

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "storeToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A store's token (hub.yaml stores[].token): its agent posts and reads "
        "that store's data.",
    },
    "merchantToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A merchant's token (hub.yaml merchants[].token): reads the merchant's "
        "stores.",
    },
    "platformSignature": {
        "type": "apiKey",
        "in": "query",
        "name": "sign",
        "description": "Platform webhooks carry no token; each is signed as its platform "
        "documents it, with the app secret in hub.yaml platforms: Meituan `sig` "
        "(md5 of URL, sorted params and secret), Eleme `sign` and JD Daojia `sign` (md5 "
        "of the sorted params with the secret), Douyin the `event-sign` header (md5 of "
        "app key, body and secret). A push with a bad signature is answered 401 "
        "bad_signature; one whose signed timestamp (Meituan, Eleme, JD Daojia) is more than "
        "platforms.push_max_age_seconds (300) from the hub's clock 401 stale_push.",
    },
}


# -- catalog and stock (cloud/api/catalog.py, stock.py); payments.py keeps its own ----------

_YUAN = {"type": "number", "minimum": 0, "description": "Yuan with 2 decimals (3.5 = ¥3.50)."}
_BARCODE_PARAM = {
    "name": "barcode",
    "in": "path",
    "required": True,
    "description": "The product's barcode (its identity in the catalog).",
    "schema": {"type": "string", "maxLength": 64},
}

SCHEMAS.update(
    {
        "Product": {
            "type": "object",
            "required": ["barcode", "name", "price"],
            "properties": {
                "barcode": {"type": "string", "maxLength": 64},
                "name": {"type": "string"},
                "price": _YUAN,
                "cost": {"type": ["number", "null"], "description": "Unit cost, yuan."},
                "shelf": {"type": "string", "description": "货架号"},
                "low_stock": {
                    "type": ["integer", "null"],
                    "description": "库存预警: low at or below this quantity.",
                },
            },
        },
        "ProductWithStock": {
            "allOf": [
                {"$ref": "#/components/schemas/Product"},
                {
                    "type": "object",
                    "properties": {
                        "qty": {"type": "integer"},
                        "low": {"type": "boolean", "description": "qty <= low_stock"},
                    },
                },
            ]
        },
        "SkuMapping": {
            "type": "object",
            "properties": {
                "platform": {"type": "string"},
                "sku": {"type": "string"},
                "upc": {"type": "string"},
                "barcode": {"type": ["string", "null"]},
                "name": {"type": "string"},
                "matched": {"type": "boolean"},
            },
        },
        "StockEntry": {
            "type": "object",
            "description": "One movement of the stock ledger.",
            "properties": {
                "id": {"type": "integer"},
                "store": {"type": "string"},
                "barcode": {"type": "string"},
                "delta": {"type": "integer"},
                "reason": {"type": "string", "examples": ["sale", "pickup", "restock"]},
                "source": {"type": "string", "description": "What caused it; booked once."},
                "qty_after": {"type": "integer"},
                "version": {"type": "integer"},
                "at": {"type": "string", "format": "date-time"},
                "note": {"type": "string"},
                "ref": {"type": "string", "description": "The order it belongs to, or empty."},
            },
        },
        "Payment": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "store": {"type": "string"},
                "checkout": {"type": "string"},
                "cart": {"type": "string"},
                "amount": _YUAN,
                "items": {"type": "array", "items": {"type": "object"}},
                "status": {"enum": ["pending", "paid", "cancelled", "expired"]},
                "created_at": {"type": "string", "format": "date-time"},
                "expires_at": {"type": "string", "format": "date-time"},
                "paid_at": {"type": ["string", "null"], "format": "date-time"},
                "method": {"type": ["string", "null"]},
                "delivery": {"type": ["object", "string", "null"]},
            },
        },
        "PaymentReply": {
            "type": "object",
            "required": ["payment"],
            "properties": {"payment": {"$ref": "#/components/schemas/Payment"}},
        },
    }
)

SECURITY_SCHEMES["paymentSignature"] = {
    "type": "apiKey",
    "in": "header",
    "name": "X-Shopgate-Signature",
    "description": "A payment provider's notification: HMAC-SHA256 of the timestamp "
    "(header X-Shopgate-Timestamp) and the body under payments.notify_secret.",
}

_PRODUCTS_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["products"],
                "properties": {
                    "products": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 5000,
                        "items": _ref("Product"),
                    }
                },
            }
        }
    },
}

OPERATIONS.update(
    {
        "GET /api/v1/stores/{store}/catalog": {
            "tags": ["catalog"],
            "operationId": "listProducts",
            "summary": "The store's catalog, each product with its stock",
            "security": STORE_READ,
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["products"],
                        "properties": {
                            "products": {"type": "array", "items": _ref("ProductWithStock")},
                            "delivery": {
                                "type": "object",
                                "description": "Whether the store has the latest catalog.",
                            },
                        },
                    },
                    "The products.",
                )
            },
        },
        "POST /api/v1/stores/{store}/catalog": {
            "tags": ["catalog"],
            "operationId": "upsertProducts",
            "summary": "Add or change products (sent on to the store as catalog.upsert)",
            "description": "Refused whole if one product is bad, naming it (`index`).",
            "security": STORE_READ,
            "requestBody": _PRODUCTS_BODY,
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "upserted": {"type": "integer"},
                            "changed": {"type": "integer"},
                        },
                    },
                    "Stored.",
                ),
                "400": error_response("A bad product."),
            },
        },
        "POST /api/v1/stores/{store}/catalog/import": {
            "tags": ["catalog"],
            "operationId": "importProducts",
            "summary": "Import a catalog CSV (UTF-8 or GBK, Chinese or English headers)",
            "description": "The good rows are taken; each bad one is reported by row number.",
            "security": STORE_READ,
            "requestBody": {
                "required": True,
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {
                                "file": {"type": "string", "contentMediaType": "text/csv"}
                            },
                        }
                    },
                },
            },
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "imported": {"type": "integer"},
                            "changed": {"type": "integer"},
                            "errors": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "row": {"type": "integer"},
                                        "reason": {"type": "string"},
                                    },
                                },
                            },
                            "encoding": {"type": "string"},
                        },
                    },
                    "What was imported, and each row refused.",
                ),
                "400": error_response("Not a CSV file the hub can read."),
            },
        },
        "GET /api/v1/stores/{store}/catalog/{barcode}": {
            "tags": ["catalog"],
            "operationId": "getProduct",
            "summary": "One product, with its stock",
            "security": STORE_READ,
            "parameters": [_BARCODE_PARAM],
            "responses": {
                "200": _json(_ref("ProductWithStock"), "The product."),
                "404": error_response("No such product in the catalog."),
            },
        },
        "PUT /api/v1/stores/{store}/catalog/{barcode}": {
            "tags": ["catalog"],
            "operationId": "putProduct",
            "summary": "Set one product",
            "security": STORE_READ,
            "parameters": [_BARCODE_PARAM],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("Product")}},
            },
            "responses": {
                "200": _json(_ref("Product"), "Stored (`changed`: whether anything changed)."),
                "400": error_response("A bad product."),
            },
        },
        "GET /api/v1/stores/{store}/skus": {
            "tags": ["catalog"],
            "operationId": "listSkus",
            "summary": "Each platform SKU and the product it is; unmatched ones for the owner",
            "security": STORE_READ,
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "skus": {"type": "array", "items": _ref("SkuMapping")},
                            "unmatched": {"type": "array", "items": _ref("SkuMapping")},
                        },
                    },
                    "The SKUs.",
                )
            },
        },
        "POST /api/v1/stores/{store}/skus": {
            "tags": ["catalog"],
            "operationId": "mapSkus",
            "summary": "List platform SKUs, or map them to products by barcode",
            "security": STORE_READ,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["skus"],
                            "properties": {
                                "skus": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["platform", "sku"],
                                        "properties": {
                                            "platform": {"type": "string"},
                                            "sku": {"type": "string"},
                                            "upc": {"type": "string"},
                                            "name": {"type": "string"},
                                            "barcode": {"type": "string"},
                                        },
                                    },
                                }
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": _json({"type": "object"}, "The mappings as they now are."),
                "400": error_response("A bad SKU."),
            },
        },
        "GET /api/v1/stores/{store}/stock": {
            "tags": ["stock"],
            "operationId": "listStock",
            "summary": "Every item's quantity (the sum of its ledger entries) and low flag",
            "security": STORE_READ,
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["stock"],
                        "properties": {
                            "stock": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "barcode": {"type": "string"},
                                        "name": {"type": ["string", "null"]},
                                        "shelf": {"type": ["string", "null"]},
                                        "qty": {"type": "integer"},
                                        "low_stock": {"type": ["integer", "null"]},
                                        "low": {"type": "boolean"},
                                    },
                                },
                            }
                        },
                    },
                    "The stock.",
                )
            },
        },
        "GET /api/v1/stores/{store}/stock/{barcode}": {
            "tags": ["stock"],
            "operationId": "getStockItem",
            "summary": "One item's quantity and its newest ledger entries",
            "security": STORE_READ,
            "parameters": [
                _BARCODE_PARAM,
                {
                    "name": "limit",
                    "in": "query",
                    "description": "Entries to list (default 100).",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                },
            ],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "barcode": {"type": "string"},
                            "qty": {"type": "integer"},
                            "entries": {"type": "array", "items": _ref("StockEntry")},
                        },
                    },
                    "The item.",
                ),
                "400": error_response("A bad limit."),
            },
        },
        "POST /api/v1/stores/{store}/stock/{barcode}": {
            "tags": ["stock"],
            "operationId": "moveStock",
            "summary": "Book a movement by hand (restock, stock-take adjustment, manual)",
            "description": "Either `delta` (a movement) or `qty` (a count: the ledger books "
            "the difference). The same `key` books nothing the second time.",
            "security": STORE_READ,
            "parameters": [_BARCODE_PARAM],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "delta": {"type": "integer"},
                                "qty": {"type": "integer"},
                                "reason": {"enum": ["restock", "adjust", "manual"]},
                                "key": {"type": "string", "minLength": 1, "maxLength": 100},
                                "note": {"type": "string"},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "duplicate": {"type": "boolean"},
                            "qty": {"type": "integer"},
                            "entry": _ref("StockEntry"),
                        },
                    },
                    "Booked (or a duplicate of a movement booked before).",
                ),
                "400": error_response("A bad movement."),
            },
        },
        "POST /api/v1/stores/{store}/orders/{order}/restore-stock": {
            "tags": ["stock"],
            "operationId": "restoreOrderStock",
            "summary": "一键恢复库存: put a picked-up order's goods back in stock, once",
            "security": STORE_READ,
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "order": {"type": "string"},
                            "restored": {"type": "array", "items": _ref("StockEntry")},
                        },
                    },
                    "The entries that put the goods back.",
                ),
                "404": error_response("No such order in this store."),
                "409": error_response("Not picked up, restored already, or nothing taken."),
            },
        },
        "GET /api/v1/stores/{store}/stock-push": {
            "tags": ["stock"],
            "operationId": "stockPushState",
            "summary": "Each platform SKU's stock push: what it should show, what it was told",
            "security": STORE_READ,
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["push"],
                        "properties": {
                            "push": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "platform": {"type": "string"},
                                        "sku": {"type": "string"},
                                        "barcode": {"type": "string"},
                                        "qty": {"type": "integer"},
                                        "pushed_qty": {"type": ["integer", "null"]},
                                        "pending": {"type": "boolean"},
                                        "attempts": {"type": "integer"},
                                        "error": {"type": ["string", "null"]},
                                        "next_try": {"type": ["string", "null"]},
                                        "pushed_at": {"type": ["string", "null"]},
                                    },
                                },
                            }
                        },
                    },
                    "The push state.",
                )
            },
        },
    }
)
