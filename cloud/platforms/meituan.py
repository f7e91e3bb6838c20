"""Meituan (美团外卖 / 闪购 open platform): pushes, signature, reply, calls back.

Signature, both ways: `sig = md5(url + "?" + "&".join(k=v for params sorted by name,
sig excluded) + app_secret)`, lower-case hex, over the values as sent (form-decoded once).
`url` is the address called, without the query: for a push, the hub's public URL of the
webhook (`http.public_url` + path); for a call, the API URL.

One webhook takes every push; which one it is shows in its fields:
- `detail` (new order): order_id, wm_order_id_view, app_poi_code, day_seq, status,
  detail (JSON list, possibly URL-encoded once more: app_food_code, sku_id, food_name,
  quantity, price in yuan, upc), caution (the customer's note), total, shipping_fee (yuan),
  poi_receive_detail (JSON: foodShareFeeChargeByPoi is the commission, fen);
- `notify_type` (refund): agree means refunded; apply/reject/cancelRefund are logged;
- `reason_code` (cancellation);
- `status` alone (status change): 9 cancelled; 1 submitted, 2 pushed, 4 confirmed,
  8 completed are logged.
Every push carries `timestamp` (Unix seconds), covered by `sig`: the hub's replay window.
Answer: `{"data": "ok"}`; a refusal `{"data": "ng", "error": {"msg": ...}}`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote

import aiohttp
from aiohttp import web

from cloud import consttime
from cloud.platforms.base import (
    ItemFields,
    NormalizedOrder,
    OrderRef,
    PlatformAdapter,
    PlatformAuthError,
    PlatformBadRequest,
    PlatformCallError,
    PlatformClient,
    PlatformPush,
    PushKind,
    PushRequest,
    StockLine,
    delivery_from,
    form_params,
    id_field,
    int_field,
    json_object,
    json_value,
    push_time,
    read_items,
    text_field,
)

NAME = "meituan"
STATUS_CANCELLED = "9"


def sign(url: str, params: Mapping[str, str], secret: str) -> str:
    """Meituan's `sig` of a request to `url` with `params` (any `sig` among them ignored)."""
    pairs = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sig")
    return hashlib.md5(f"{url}?{pairs}{secret}".encode()).hexdigest()


def yuan_to_fen(value: Any, what: str) -> int:
    """12.5 or "12.50" yuan -> 1250 fen; exact (Decimal), refused when not a whole fen."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PlatformBadRequest(f"{what} must be an amount in yuan")
    try:
        amount = Decimal(str(value)) * 100
    except InvalidOperation:
        raise PlatformBadRequest(f"{what} must be an amount in yuan, got {value!r:.40}") from None
    if not amount.is_finite() or amount != amount.to_integral_value() or abs(amount) > 10**12:
        raise PlatformBadRequest(f"{what} must be an amount in yuan, got {value!r:.40}")
    return int(amount)


ITEM_FIELDS = ItemFields(
    name="food_name",
    qty="quantity",
    price="price",
    sku=("app_food_code", "sku_id"),
    barcode="upc",
    read_price=lambda item, key, where: yuan_to_fen(item.get(key), f"{where}{key}"),
)


class MeituanAdapter(PlatformAdapter):
    name = NAME

    def client(self, session: aiohttp.ClientSession | None = None) -> MeituanClient:
        return MeituanClient(self.creds, session)

    def verify(self, request: PushRequest) -> None:
        params = form_params(request)
        given = params.get("sig", "")
        if not given:
            raise PlatformAuthError("no sig")
        expected = sign(request.url, params, self.creds.secret)
        if not consttime.equal(given.lower(), expected):
            raise PlatformAuthError(f"sig does not match (signed URL {request.url})")

    def signed_at(self, request: PushRequest) -> float:
        return push_time(form_params(request), "timestamp", NAME)

    def parse_push(self, request: PushRequest) -> PlatformPush:
        params = form_params(request)
        if not params.get("order_id"):
            raise PlatformBadRequest("order_id is missing")
        order_id = id_field(params, "order_id")
        shop = text_field(params, "app_poi_code")
        if "detail" in params:
            order = _order(params)
            return PlatformPush(NAME, "new", order_id, order.shop_id, order, order.platform_status)
        if "notify_type" in params:
            notify = text_field(params, "notify_type")
            reason = text_field(params, "reason")
            kind: PushKind = "refunded" if notify == "agree" else "status"
            return PlatformPush(NAME, kind, order_id, shop, None, f"refund:{notify}", reason)
        if "reason_code" in params:
            reason = text_field(params, "reason") or text_field(params, "reason_code")
            return PlatformPush(NAME, "cancelled", order_id, shop, None, STATUS_CANCELLED, reason)
        status = text_field(params, "status")
        if not status:
            raise PlatformBadRequest("a push needs detail, notify_type, reason_code or status")
        change: PushKind = "cancelled" if status == STATUS_CANCELLED else "status"
        return PlatformPush(NAME, change, order_id, shop, None, status)

    def reply_ok(self, push: PlatformPush | None = None) -> web.Response:
        return web.json_response({"data": "ok"})

    def refusal(self, status: int, message: str, request: PushRequest | None) -> dict[str, Any]:
        # Anything but data "ok" is a failure to Meituan, which pushes again later.
        return {"data": "ng", "error": {"msg": message}}


def _order(params: Mapping[str, str]) -> NormalizedOrder:
    raw_detail = params["detail"]
    try:
        detail = json_value(raw_detail, "detail")
    except PlatformBadRequest:
        # Meituan URL-encodes the JSON once more inside the form.
        detail = json_value(unquote(raw_detail), "detail")
    items = read_items(detail, "detail", ITEM_FIELDS)
    commission = 0
    if params.get("poi_receive_detail"):
        receive = json_object(params["poi_receive_detail"], "poi_receive_detail")
        commission = int_field(receive, "foodShareFeeChargeByPoi", "poi_receive_detail.", default=0)
    status = text_field(params, "status")
    return NormalizedOrder(
        platform=NAME,
        platform_order_id=id_field(params, "order_id"),
        shop_id=id_field(params, "app_poi_code"),
        day_seq=int_field(params, "day_seq", default=0, maximum=10**9),
        items=items,
        note=text_field(params, "caution"),
        total=yuan_to_fen(params.get("total"), "total"),
        fees=yuan_to_fen(params.get("shipping_fee"), "shipping_fee"),
        commission=commission,
        platform_status=status,
        cancelled=status == STATUS_CANCELLED,
        view_id=text_field(params, "wm_order_id_view"),
        # The order push's recipient fields (Meituan waimai open platform, order push).
        delivery=delivery_from(
            params.get("recipient_address"),
            params.get("recipient_phone"),
            params.get("latitude"),
            params.get("longitude"),
        ),
    )


class MeituanClient(PlatformClient):
    name = NAME
    default_url = "https://waimaiopen.meituan.com/api/v1"

    async def confirm_order(self, order: OrderRef) -> None:
        await self.call("/order/confirm", {"order_id": order.platform_order_id})

    async def picking_done(self, order: OrderRef) -> None:
        await self.call("/order/preparationMealComplete", {"order_id": order.platform_order_id})

    async def update_stock(self, shop_id: str, items: Sequence[StockLine]) -> None:
        # A line's sku (else its barcode) is the app_food_code, as the merchant listed it.
        food_data = [
            {
                "app_food_code": line.sku or line.barcode,
                "skus": [{"sku_id": line.sku or line.barcode, "stock": str(line.qty)}],
            }
            for line in items
        ]
        payload = json.dumps(food_data, ensure_ascii=False, separators=(",", ":"))
        await self.call("/retail/sku/stock", {"app_poi_code": shop_id, "food_data": payload})

    async def call(self, path: str, params: Mapping[str, str]) -> Any:
        url = self.base_url + path
        body = {**params, "app_id": self.creds.app_id, "timestamp": str(int(time.time()))}
        body["sig"] = sign(url, body, self.creds.secret)
        answer = await self.post(url, what=f"meituan {path}", data=body)
        if not isinstance(answer, dict) or answer.get("data") != "ok":
            error = answer.get("error") if isinstance(answer, dict) else answer
            raise PlatformCallError(f"meituan {path} refused: {json.dumps(error)[:300]}")
        return answer
