"""Eleme retail (饿了么零售开放平台): pushes, signature, reply, calls back.

Every request, both ways, is a form of `cmd`, `timestamp`, `ticket` (a UUID), `version`
(3), `source` (the app's source id: `app_id` in hub.yaml), `encrypt` (empty), `body` (a
JSON string) and `sign = MD5("&".join(k=v for those params plus secret=<secret>, sorted
by name)).upper()`. The secret takes part in the hash and is never sent.

Pushes (`cmd`): `order.create` (body {order_id}: the order is fetched with `order.get`,
unless the body carries it whole as `order.get` would answer), `order.status.push`
(body {order_id, status}: 10 cancelled, 15 refunded, others logged), anything else with
an order_id is logged. The answer is signed as well:
`{"cmd": "resp.<cmd>", "ticket": <the push's>, "body": {"errno": 0, "error": "success",
"data": ""}, ...}`; a refusal the same with `errno` the HTTP status and `error` the reason.
`timestamp` (Unix seconds, signed) dates the push for the hub's replay window.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from aiohttp import web

from cloud.platforms.base import (
    Delivery,
    ItemFields,
    NormalizedOrder,
    OrderRef,
    PlatformAdapter,
    PlatformBadRequest,
    PlatformCallError,
    PlatformClient,
    PlatformPush,
    PushKind,
    PushRequest,
    StockLine,
    check_signed_form,
    delivery_from,
    form_params,
    id_field,
    int_field,
    json_object,
    list_field,
    push_time,
    read_items,
    text_field,
)

NAME = "eleme"
VERSION = "3"
SIGNED = ("cmd", "timestamp", "ticket", "version", "source", "encrypt", "body")
STATUS_CANCELLED = "10"
STATUS_REFUNDED = "15"
ITEM_FIELDS = ItemFields(
    name="product_name",
    qty="product_amount",
    price="product_price",
    sku=("custom_sku_id", "sku_id"),
    barcode="upc",
)


def sign(params: Mapping[str, str], secret: str) -> str:
    """Eleme's `sign` over the protocol params present in `params` and the secret."""
    signed = {k: params[k] for k in SIGNED if k in params}
    signed["secret"] = secret
    text = "&".join(f"{k}={signed[k]}" for k in sorted(signed))
    return hashlib.md5(text.encode()).hexdigest().upper()


def envelope(cmd: str, body: Mapping[str, Any], source: str, secret: str, ticket: str) -> dict:
    params = {
        "cmd": cmd,
        "timestamp": str(int(time.time())),
        "ticket": ticket,
        "version": VERSION,
        "source": source,
        "encrypt": "",
        "body": json.dumps(body, ensure_ascii=False, separators=(",", ":")),
    }
    params["sign"] = sign(params, secret)
    return params


class ElemeAdapter(PlatformAdapter):
    name = NAME

    def client(self, session: aiohttp.ClientSession | None = None) -> ElemeClient:
        return ElemeClient(self.creds, session)

    def verify(self, request: PushRequest) -> None:
        check_signed_form(
            form_params(request),
            app_field="source",
            app_id=self.creds.app_id,
            sign_of=lambda params: sign(params, self.creds.secret),
        )

    def signed_at(self, request: PushRequest) -> float:
        return push_time(form_params(request), "timestamp", NAME)

    def parse_push(self, request: PushRequest) -> PlatformPush:
        params = form_params(request)
        cmd = text_field(params, "cmd")
        ticket = text_field(params, "ticket")
        if not cmd:
            raise PlatformBadRequest("cmd is missing")
        context = {"cmd": cmd, "ticket": ticket}
        body = json_object(params.get("body") or "{}", "body")
        if not body.get("order_id") and not isinstance(body.get("order"), Mapping):
            # Eleme checks the webhook with pushes that name no order.
            return PlatformPush(NAME, "ping", reply_context=context)
        if cmd == "order.create":
            if isinstance(body.get("order"), Mapping):
                order = normalize(body)
                return PlatformPush(
                    NAME,
                    "new",
                    order.platform_order_id,
                    order.shop_id,
                    order,
                    reply_context=context,
                )
            order_id = id_field(body, "order_id", "body.")
            return PlatformPush(NAME, "new", order_id, reply_context=context)
        order_id = id_field(body, "order_id", "body.")
        status = text_field(body, "status", "body.")
        reason = text_field(body, "reason", "body.") or text_field(body, "cancel_reason", "body.")
        kind: PushKind
        if cmd == "order.status.push" and status == STATUS_CANCELLED:
            kind = "cancelled"
        elif cmd == "order.status.push" and status == STATUS_REFUNDED:
            kind = "refunded"
        else:
            kind = "status"
        label = status if cmd == "order.status.push" else f"{cmd}:{status}".rstrip(":")
        return PlatformPush(NAME, kind, order_id, "", None, label, reason, context)

    def reply_ok(self, push: PlatformPush | None = None) -> web.Response:
        context = push.reply_context if push is not None else {}
        body = {"errno": 0, "error": "success", "data": ""}
        params = envelope(
            "resp." + context.get("cmd", ""),
            body,
            self.creds.app_id,
            self.creds.secret,
            context.get("ticket", ""),
        )
        return web.json_response({**params, "body": body})

    def refusal(self, status: int, message: str, request: PushRequest | None) -> dict[str, Any]:
        # The same signed envelope as a success, with errno set: Eleme pushes again.
        context: Mapping[str, str] = {}
        if request is not None:
            try:
                context = form_params(request)
            except PlatformBadRequest:
                pass
        body = {"errno": status, "error": message, "data": ""}
        cmd, ticket = str(context.get("cmd", ""))[:64], str(context.get("ticket", ""))[:64]
        params = envelope("resp." + cmd, body, self.creds.app_id, self.creds.secret, ticket)
        return {**params, "body": body}


def normalize(data: Mapping[str, Any]) -> NormalizedOrder:
    """An order as `order.get` answers it: {shop: {id}, order: {...}, products: [[...]]}."""
    order = data.get("order")
    shop = data.get("shop")
    if not isinstance(order, Mapping):
        raise PlatformBadRequest("order must be an object")
    if not isinstance(shop, Mapping):
        raise PlatformBadRequest("shop must be an object")
    bags = list_field(data, "products")
    # Products come in bags (one list per bag); a flat list is taken as one bag.
    lines: list[Any] = []
    for bag in bags:
        lines.extend(bag if isinstance(bag, list) else [bag])
    items = read_items(lines, "products", ITEM_FIELDS)
    status = text_field(order, "status", "order.")
    return NormalizedOrder(
        platform=NAME,
        platform_order_id=id_field(order, "order_id", "order."),
        shop_id=id_field(shop, "id", "shop."),
        day_seq=int_field(order, "order_index", "order.", default=0, maximum=10**9),
        items=items,
        note=text_field(order, "remark", "order."),
        total=int_field(order, "user_fee", "order.", default=0),
        fees=int_field(order, "send_fee", "order.", default=0)
        + int_field(order, "package_fee", "order.", default=0),
        commission=int_field(order, "commission", "order.", default=0),
        platform_status=status,
        cancelled=status == STATUS_CANCELLED,
        view_id=text_field(order, "eleme_order_id", "order."),
        delivery=_delivery(data),
    )


def _delivery(data: Mapping[str, Any]) -> Delivery | None:
    """order.get's `user` (address, phone: the masked number, coord), our reading of the
    Eleme retail order document."""
    user = data.get("user")
    if not isinstance(user, Mapping):
        return None
    found = user.get("coord")
    coord: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    return delivery_from(
        user.get("address"), user.get("phone"), coord.get("latitude"), coord.get("longitude")
    )


class ElemeClient(PlatformClient):
    name = NAME
    default_url = "https://api-be.ele.me"

    async def confirm_order(self, order: OrderRef) -> None:
        await self.call("order.confirm", {"order_id": order.platform_order_id})

    async def picking_done(self, order: OrderRef) -> None:
        await self.call("order.pickcomplete", {"order_id": order.platform_order_id})

    async def update_stock(self, shop_id: str, items: Sequence[StockLine]) -> None:
        body: dict[str, str] = {"shop_id": shop_id}
        by_sku = ";".join(f"{line.sku}:{line.qty}" for line in items if line.sku)
        by_upc = ";".join(f"{line.barcode}:{line.qty}" for line in items if not line.sku)
        if by_sku:
            body["custom_sku_id"] = by_sku
        if by_upc:
            body["upc"] = by_upc
        await self.call("sku.stock.update.batch", body)

    async def fetch_order(self, push: PlatformPush) -> NormalizedOrder:
        data = await self.call("order.get", {"order_id": push.platform_order_id})
        if not isinstance(data, Mapping):
            raise PlatformCallError("eleme order.get answered no order")
        try:
            return normalize(data)
        except PlatformBadRequest as e:
            raise PlatformCallError(f"eleme order.get: {e}") from None

    async def call(self, cmd: str, body: Mapping[str, Any]) -> Any:
        ticket = str(uuid.uuid4()).upper()
        params = envelope(cmd, body, self.creds.app_id, self.creds.secret, ticket)
        answer = await self.post(self.base_url + "/", what=f"eleme {cmd}", data=params)
        reply = answer.get("body") if isinstance(answer, dict) else None
        if not isinstance(reply, dict) or reply.get("errno") != 0:
            raise PlatformCallError(f"eleme {cmd} refused: {json.dumps(reply)[:300]}")
        return reply.get("data")
