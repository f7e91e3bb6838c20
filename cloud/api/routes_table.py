"""Every API route in one table: what it takes and answers, and who may call it.

One row per route, keyed as aiohttp spells the path. The bodies are the models of
cloud/api/bodies, which the handlers validate requests through; cloud/api/openapi.py
derives the OpenAPI document from these rows and those models. A route the hub serves
without a row here is listed in the document as undocumented, and tests/cloud/test_openapi.py
refuses that (and a row for a route the hub does not serve).

Responses: a status mapped to a model (its docstring says what it is), to a model and
words, to words alone (an error: the API's error object), or to a Media of raw content.
Auth: `store` (the store's token or a merchant's listing it), `store_write` (the store's
own token), `public` (none), `platform` / `payment` (no token, the sender's signature).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from cloud.api.bodies import (
    catalog,
    courier,
    enroll,
    erp,
    events,
    health,
    orders,
    payments,
    platforms,
    stock,
)

Auth = Literal["store", "store_write", "public", "platform", "payment"]


@dataclass(frozen=True)
class Media:
    """Content described by hand: a media type the models do not cover (CSV, JWT)."""

    description: str
    content: dict[str, Any]
    model: type[BaseModel] | None = None  # also offered as application/json


Answer = type[BaseModel] | tuple[type[BaseModel], str] | str | Media


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    op_id: str
    summary: str
    tag: str
    auth: Auth
    responses: dict[int, Answer]
    body: type[BaseModel] | Media | None = None
    body_required: bool = True
    query: type[BaseModel] | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


S = "/api/v1/stores/{store}"
_CSV = {"type": "string", "contentMediaType": "text/csv"}

ROUTES: tuple[Route, ...] = (
    # -- events (CONTRACTS section 4) ---------------------------------------------------
    Route("POST", S + "/events", "postEvents", "An agent posts a batch of its events",
          "events", "store_write", body=events.EventBatch,
          description="Taken whole or not at all; each event id is stored once (resent "
          "events count as duplicates). Gzip bodies (`Content-Encoding: gzip`) are "
          "accepted; the size limit applies after decompression.",
          responses={200: (events.EventsAccepted, "Stored (new ones) or known (duplicates)."),
                     400: "A bad event; `index` and `field` name the first one.",
                     413: "The body is too large; send smaller batches."}),
    Route("GET", S + "/events", "listEvents", "A store's events, in seq order", "events",
          "store", query=events.EventsQuery,
          responses={200: events.EventList, 400: "A bad query parameter."}),
    # -- orders --------------------------------------------------------------------------
    Route("GET", S + "/orders", "listOrders",
          "A store's platform orders, as its agent takes them", "orders", "store",
          query=orders.OrdersQuery,
          responses={200: Media(
              "The orders, oldest change first. With Accept: application/jwt, one compact "
              "JWS signed with the hub's key (what agents take): scope `orders.sync`, aud "
              "the store, claim `sync` = {orders, now, status, updated_after, nonce}.",
              {"application/jwt": {"schema": {"type": "string"}}}, model=orders.OrderList),
              400: "A bad query parameter.", 503: "This hub serves no orders."}),
    Route("GET", S + "/orders/{order_id}/pickup-pass", "getPickupPass",
          "A courier's pickup pass for one pending order", "orders", "store",
          query=orders.PickupPassQuery,
          responses={200: (orders.PickupPass, "A fresh pass, valid courier.pass_ttl_seconds."),
                     404: "No such order in this store.",
                     409: "The order is no longer pending."}),
    Route("POST", "/api/v1/platforms/{platform}/push", "receivePlatformPush",
          "A delivery platform's webhook (new order, cancellation, refund, status)",
          "platforms", "platform",
          body=Media("The platform's own push fields.", {
              "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
          }, model=platforms.PlatformPush),
          description="No bearer token: each push is checked against its platform's "
          "signature (see the platformSignature scheme). Answered in the platform's own "
          "shape; a refusal carries the platform's failure fields (Meituan data ng, Eleme "
          "errno, JD Daojia and Douyin code) beside the hub's error object.",
          responses={200: (platforms.PlatformReply, "Taken."),
                     400: "Unreadable, or an order of a shop no store maps.",
                     401: "bad_signature: not signed by the platform; stale_push: signed "
                     "too long ago.",
                     404: "That platform is not configured.",
                     503: "The order could not be fetched from the platform; push again."}),
    # -- stock -----------------------------------------------------------------------------
    Route("GET", S + "/stock", "listStock",
          "Every item's quantity (the sum of its ledger entries) and low flag", "stock",
          "store", responses={200: (stock.StockList, "The stock.")}),
    Route("GET", S + "/stock/{barcode}", "getStockItem",
          "One item's quantity and its newest ledger entries", "stock", "store",
          query=stock.LedgerQuery,
          responses={200: stock.ItemLedger, 400: "A bad limit."}),
    Route("POST", S + "/stock/{barcode}", "moveStock",
          "Book a movement by hand (restock, stock-take adjustment, manual)", "stock",
          "store", body=stock.Movement,
          responses={200: stock.Moved, 400: "A bad movement."}),
    Route("POST", S + "/orders/{order}/restore-stock", "restoreOrderStock",
          "一键恢复库存: put a picked-up order's goods back in stock, once", "stock", "store",
          responses={200: stock.Restored, 404: "No such order in this store.",
                     409: "Not picked up, restored already, or nothing taken."}),
    Route("GET", S + "/stock-push", "stockPushState",
          "Each platform SKU's stock push: what it should show, what it was told", "stock",
          "store", responses={200: (stock.PushStateList, "The push state.")}),
    # -- catalog ---------------------------------------------------------------------------
    Route("GET", S + "/catalog", "listProducts",
          "The store's catalog, each product with its stock", "catalog", "store",
          responses={200: (catalog.CatalogList, "The products.")}),
    Route("POST", S + "/catalog", "upsertProducts",
          "Add or change products (sent on to the store as catalog.upsert)", "catalog",
          "store", body=catalog.ProductsIn,
          responses={200: (catalog.ProductsStored, "Stored."), 400: "A bad product."}),
    Route("POST", S + "/catalog/import", "importProducts",
          "Import a catalog CSV (UTF-8 or GBK, Chinese or English headers)", "catalog",
          "store", description="The good rows are taken; each bad one is reported by row "
          "number.",
          body=Media("The CSV file, as the body or a form's `file`.", {
              "text/csv": {"schema": {"type": "string"}},
              "multipart/form-data": {"schema": {
                  "type": "object", "required": ["file"], "properties": {"file": _CSV}}},
          }),
          responses={200: catalog.CatalogImported, 400: "Not a CSV file the hub can read."}),
    Route("GET", S + "/catalog/{barcode}", "getProduct", "One product, with its stock",
          "catalog", "store",
          responses={200: (catalog.ProductWithStock, "The product."),
                     404: "No such product in the catalog."}),
    Route("PUT", S + "/catalog/{barcode}", "putProduct", "Set one product", "catalog",
          "store", body=catalog.ProductIn,
          description="The URL's barcode is the product's; one in the body is not used.",
          responses={200: (catalog.ProductStored, "Stored."), 400: "A bad product."}),
    Route("GET", S + "/skus", "listSkus",
          "Each platform SKU and the product it is; unmatched ones for the owner",
          "catalog", "store", responses={200: (catalog.SkuList, "The SKUs.")}),
    Route("POST", S + "/skus", "mapSkus",
          "List platform SKUs, or map them to products by barcode", "catalog", "store",
          body=catalog.SkusIn,
          responses={200: (catalog.SkuList, "The mappings as they now are."),
                     400: "A bad SKU."}),
    # -- the courier at the door (CONTRACTS section 8) -------------------------------------
    Route("GET", S + "/doors/{door}/courier", "listCourierOrders",
          "The door's open pickup orders, nothing naming a customer (CONTRACTS 8)",
          "courier", "public",
          responses={200: (courier.CourierOrders, "Open orders of the last 24 hours."),
                     404: "no_such_door"}),
    Route("POST", S + "/doors/{door}/courier", "claimCourierOrder",
          "A courier claims their order with the last 4 digits of its number", "courier",
          "public", body=courier.CourierClaim,
          responses={200: (courier.CourierClaimed, "The pass, and whether the door opened."),
                     400: "bad_body", 403: "wrong_tail (with `left`)",
                     404: "no_such_order / no_such_door",
                     429: "paused, with Retry-After"}),
    # -- enrollment (CONTRACTS section 9) ---------------------------------------------------
    Route("POST", "/api/v1/enroll", "enrollStore",
          "A new store's agent trades a one-time code for its identity and config",
          "enrollment", "public", body=enroll.EnrollRequest,
          responses={200: (enroll.EnrollBundle, "The store's bundle."), 400: "bad_body",
                     403: "unknown_code", 409: "unknown_store: no longer in hub.yaml",
                     410: "used_code / expired_code", 429: "paused, with Retry-After"}),
    # -- payments ---------------------------------------------------------------------------
    Route("POST", S + "/payments", "createPayment",
          "A self-checkout asks for a payment of its cart", "payments", "store_write",
          body=payments.PaymentRequest,
          responses={201: (payments.PaymentCreated, "The payment, pending."),
                     400: "Not a payment request; the message says why."}),
    Route("GET", S + "/payments/{payment}", "getPayment",
          "One payment of the store, with its status", "payments", "store",
          responses={200: (payments.PaymentReply, "The payment."),
                     404: "No such payment for this store."}),
    Route("POST", S + "/payments/{payment}/cancel", "cancelPayment",
          "The checkout gave up on the cart: the payment can no longer be paid",
          "payments", "store_write",
          responses={200: (payments.PaymentReply, "The payment, cancelled (or expired)."),
                     404: "No such payment for this store.",
                     409: "already_paid: the customer has paid."}),
    Route("POST", "/api/v1/payments/{payment}/notify", "notifyPayment",
          "The payment provider's notification that the customer paid", "payments",
          "payment", body=payments.PaymentNotification,
          description="Signed: X-Shopgate-Timestamp (Unix seconds) and X-Shopgate-Signature "
          "(sha256=hex HMAC-SHA256 of timestamp + '.' + body with payments.notify_secret). "
          "Every call is recorded. Marks the payment paid once and sends checkout.paid to "
          "the store; a repeat answers SUCCESS and changes nothing.",
          responses={200: (payments.NotifyTaken, "Taken (also when already paid)."),
                     400: "Bad body, stale timestamp or an amount other than the payment's.",
                     401: "Unsigned or badly signed.", 404: "No such payment.",
                     409: "The payment expired or was cancelled.",
                     413: "The notification is too large.",
                     503: "The hub has no notify secret configured."}),
    # -- ERP --------------------------------------------------------------------------------
    Route("GET", "/api/v1/erp/failures", "listErpFailures",
          "ERP pushes not sent, with the reason, of every store the caller reads", "erp",
          "store", responses={200: erp.ErpFailures, 503: "The ERP sync is not running."}),
    Route("GET", S + "/erp/failures", "listStoreErpFailures",
          "A store's ERP pushes not sent, with the reason", "erp", "store",
          responses={200: erp.ErpFailures, 503: "The ERP sync is not running."}),
    Route("POST", S + "/erp/products", "pushProductsToErp",
          "Push the store's products to its ERP in one go", "erp", "store",
          body=erp.ErpProducts, body_required=False,
          description="Without a body, the store's hub catalog is pushed. The same list "
          "pushed twice is queued once. Prices in fen.",
          responses={202: (erp.ErpQueued, "Queued (or already queued: `queued` false)."),
                     400: "A bad product list.", 409: "The store has no ERP configured."}),
    # -- the hub itself ---------------------------------------------------------------------
    Route("GET", "/api/v1/openapi.json", "getOpenApi", "This document", "meta", "public",
          responses={200: (health.OpenApiDocument, "The OpenAPI 3.1 document.")}),
    Route("GET", "/healthz", "healthz", "Is the hub up and does its database answer",
          "meta", "public",
          responses={200: (health.Health, "Healthy."),
                     503: (health.Health, "The database does not answer.")}),
)  # fmt: skip

BY_KEY: dict[str, Route] = {route.key: route for route in ROUTES}
