"""Douyin (抖店 open platform, 即时零售): pushes, signatures, reply, calls back.

Calls: `POST {url}/{method with "." as "/"}?app_key=&method=&access_token=&param_json=
&timestamp=&v=2&sign=&sign_method=`, body `param_json`, where `param_json` is the JSON of
the arguments with keys sorted and no spaces, and `sign` is MD5 (sign_method `md5`) or
HMAC-SHA256 keyed with the secret (`hmac-sha256`, what the hub sends) of
`secret + "app_key" + app_key + "method" + method + "param_json" + param_json +
"timestamp" + timestamp + "v" + "2" + secret`, lower-case hex. Answers with `code`
10000 are successes.

Pushes (消息推送): a JSON list of messages `{tag, msg_id, data}` (data: a JSON string),
headers `app-id`, `event-sign` and `sign-method` (md5, the default, or hmac-sha256), where
`event-sign` = MD5 / HMAC-SHA256 (keyed with the secret) of `app_key + body + secret`.
Tags: 101 (paid: the order is fetched with order.orderDetail), 106 (cancelled), 206
(refund succeeded), 0 (the platform's test message); others are logged.
Answer: `{"code": 0, "msg": "success"}`; a refusal: `code` the HTTP status, `msg` why.
A push carries no signed time of its own (the messages' order times do not change when
it is sent again), so the hub's replay window does not apply: a replay is harmless
because pushes are idempotent (cloud/orders/service.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from cloud import consttime
from cloud.platforms.base import (
    Delivery,
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
    id_field,
    int_field,
    json_object,
    json_value,
    object_at,
    read_items,
    text_field,
    utf8,
)

NAME = "douyin"
SignMethod = Literal["md5", "hmac-sha256"]
TAG_PING = "0"
TAG_PAID = "101"
TAG_CANCELLED = "106"
TAG_REFUNDED = "206"
STATUS_CANCELLED = "4"
SUCCESS = 10000
MAX_MESSAGES = 100
# `code` is the merchant's code (商家编码), which shops fill with the barcode.
ITEM_FIELDS = ItemFields(
    name="product_name",
    qty="item_num",
    price="goods_price",
    sku=("out_sku_id", "sku_id"),
    barcode="code",
)
CHINA = dt.timezone(dt.timedelta(hours=8))


def param_json(args: Mapping[str, Any]) -> str:
    return json.dumps(args, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _digest(text: str, secret: str, method: SignMethod) -> str:
    if method == "hmac-sha256":
        return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return hashlib.md5(text.encode()).hexdigest()


def sign(
    app_key: str,
    method: str,
    param_json_text: str,
    timestamp: str,
    secret: str,
    sign_method: SignMethod = "md5",
) -> str:
    """The `sign` of an API call."""
    text = (
        f"{secret}app_key{app_key}method{method}param_json{param_json_text}"
        f"timestamp{timestamp}v2{secret}"
    )
    return _digest(text, secret, sign_method)


def event_sign(app_key: str, body: bytes, secret: str, sign_method: SignMethod = "md5") -> str:
    """The `event-sign` header of a push of `body`."""
    return _digest(f"{app_key}{utf8(body, 'the body')}{secret}", secret, sign_method)


class DouyinAdapter(PlatformAdapter):
    name = NAME

    def client(self, session: aiohttp.ClientSession | None = None) -> DouyinClient:
        return DouyinClient(self.creds, session)

    def verify(self, request: PushRequest) -> None:
        given = request.headers.get("event-sign", "")
        if not given:
            raise PlatformAuthError("no event-sign header")
        if request.headers.get("app-id", "") != self.creds.app_id:
            raise PlatformAuthError(f"app-id {request.headers.get('app-id', '')!r:.70} is not ours")
        method = request.headers.get("sign-method", "md5").lower()
        if method not in ("md5", "hmac-sha256"):
            raise PlatformAuthError(f"sign-method {method!r:.40} is not md5 or hmac-sha256")
        # method is one of the two literals: checked just above.
        expected = event_sign(self.creds.app_id, request.body, self.creds.secret, method)  # type: ignore[arg-type]
        if not consttime.equal(given.lower(), expected):
            raise PlatformAuthError("event-sign does not match")

    def parse_push(self, request: PushRequest) -> PlatformPush:
        pushes = self.parse_pushes(request)
        if len(pushes) != 1:
            raise PlatformBadRequest(f"expected one message, got {len(pushes)}")
        return pushes[0]

    def parse_pushes(self, request: PushRequest) -> list[PlatformPush]:
        messages = json_value(utf8(request.body, "the body"), "the body")
        if not isinstance(messages, list) or not messages:
            raise PlatformBadRequest("the body must be a non-empty JSON list of messages")
        if len(messages) > MAX_MESSAGES:
            raise PlatformBadRequest(f"more than {MAX_MESSAGES} messages in one push")
        return [_message(object_at(messages, i, "messages"), i) for i in range(len(messages))]

    def reply_ok(self, push: PlatformPush | None = None) -> web.Response:
        return web.json_response({"code": 0, "msg": "success"})

    def refusal(self, status: int, message: str, request: PushRequest | None) -> dict[str, Any]:
        return {"code": status, "msg": message}


def _message(message: Mapping[str, Any], index: int) -> PlatformPush:
    where = f"messages[{index}]."
    tag = text_field(message, "tag", where)
    if tag == TAG_PING:
        return PlatformPush(NAME, "ping")
    data = json_object(text_field(message, "data", where) or "{}", f"{where}data")
    order_id = id_field(data, "p_id", f"{where}data.")
    shop = text_field(data, "shop_id", f"{where}data.")
    reason = text_field(data, "cancel_reason", f"{where}data.")
    kinds: dict[str, PushKind] = {
        TAG_PAID: "new",
        TAG_CANCELLED: "cancelled",
        TAG_REFUNDED: "refunded",
    }
    kind: PushKind = kinds.get(tag, "status")
    return PlatformPush(NAME, kind, order_id, shop, None, f"tag:{tag}", reason)


def normalize(detail: Mapping[str, Any]) -> NormalizedOrder:
    """order.orderDetail's `shop_order_detail`."""
    items = read_items(detail.get("sku_order_list"), "sku_order_list", ITEM_FIELDS)
    status = text_field(detail, "order_status")
    return NormalizedOrder(
        platform=NAME,
        platform_order_id=id_field(detail, "order_id"),
        shop_id=id_field(detail, "shop_id"),
        day_seq=0,  # the order detail has no daily number
        items=items,
        note=text_field(detail, "buyer_words"),
        total=int_field(detail, "pay_amount", default=0),
        fees=int_field(detail, "post_amount", default=0),
        platform_status=status,
        cancelled=status == STATUS_CANCELLED,
        delivery=_delivery(detail),
    )


def _delivery(detail: Mapping[str, Any]) -> Delivery | None:
    """shop_order_detail's post_addr.detail and post_tel (masked), our reading."""
    addr = detail.get("post_addr")
    text = addr.get("detail") if isinstance(addr, Mapping) else None
    return delivery_from(text, detail.get("post_tel"))


class DouyinClient(PlatformClient):
    name = NAME
    default_url = "https://openapi-fxg.jinritemai.com"

    async def confirm_order(self, order: OrderRef) -> None:
        await self.call("order.orderConfirm", {"shop_order_id": order.platform_order_id})

    async def picking_done(self, order: OrderRef) -> None:
        args = {"shop_order_id": order.platform_order_id, "picking_status": 2}
        await self.call("instantShopping.notifyPickingStatus", args)

    async def update_stock(self, shop_id: str, items: Sequence[StockLine]) -> None:
        # One SKU per call; `code` is the merchant's code it was listed with (its sku).
        for line in items:
            args = {"code": line.sku or line.barcode, "stock_num": line.qty, "incremental": False}
            await self.call("sku.syncStock", args)

    async def fetch_order(self, push: PlatformPush) -> NormalizedOrder:
        data = await self.call("order.orderDetail", {"shop_order_id": push.platform_order_id})
        detail = data.get("shop_order_detail") if isinstance(data, Mapping) else None
        if not isinstance(detail, Mapping):
            raise PlatformCallError(
                f"douyin order.orderDetail found no order {push.platform_order_id}"
            )
        try:
            return normalize(detail)
        except PlatformBadRequest as e:
            raise PlatformCallError(f"douyin order.orderDetail: {e}") from None

    async def call(self, method: str, args: Mapping[str, Any]) -> Any:
        body = param_json(args)
        timestamp = dt.datetime.now(CHINA).strftime("%Y-%m-%d %H:%M:%S")
        query = {
            "app_key": self.creds.app_id,
            "method": method,
            "access_token": self.creds.token,
            "param_json": body,
            "timestamp": timestamp,
            "v": "2",
            "sign_method": "hmac-sha256",
            "sign": sign(
                self.creds.app_id, method, body, timestamp, self.creds.secret, "hmac-sha256"
            ),
        }
        url = f"{self.base_url}/{method.replace('.', '/')}?{urlencode(query)}"
        answer = await self.post(
            url,
            what=f"douyin {method}",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
        )
        if not isinstance(answer, dict) or answer.get("code") != SUCCESS:
            shown = (
                {k: answer.get(k) for k in ("code", "msg", "sub_code", "sub_msg")}
                if isinstance(answer, dict)
                else answer
            )
            raise PlatformCallError(
                f"douyin {method} refused: {json.dumps(shown, ensure_ascii=False)[:300]}"
            )
        return answer.get("data")
