"""JD Daojia (京东到家): pushes, signature, reply, calls back.

Every request, both ways, carries `app_key`, `token`, `timestamp` ("YYYY-MM-DD HH:MM:SS"),
`format` (json), `v` (1.0), `jd_param_json` (a JSON string) and
`sign = MD5(secret + concat(k + v for params sorted by name, sign excluded) + secret).upper()`.

Pushes carry `jd_param_json` = {billId, statusId, timestamp}; the order itself is fetched
with `/djapi/order/es/query`. statusId 32000 (new order, awaiting outbound) and 41000 are
new orders, 20020 (user cancelled) and 20040 (system cancelled) cancellations; others are
logged. Answer: `{"code": "0", "msg": "success", "data": ""}`; a refusal: `code` the HTTP
status, `msg` the reason. The signed `timestamp` dates the push (the hub's replay window).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from aiohttp import web

from cloud.platforms.base import (
    ItemFields,
    NormalizedOrder,
    OrderRef,
    PlatformAdapter,
    PlatformBadRequest,
    PlatformCallError,
    PlatformClient,
    PlatformPush,
    PushRequest,
    StockLine,
    check_signed_form,
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

NAME = "jddj"
NEW_STATUSES = frozenset({"32000", "41000"})
CANCELLED_STATUSES = frozenset({"20020", "20040"})
OPERATOR = "shopgate"
ITEM_FIELDS = ItemFields(
    name="skuName", qty="skuCount", price="skuJdPrice", sku=("skuIdIsv", "skuId"), barcode="upcCode"
)
CHINA = dt.timezone(dt.timedelta(hours=8))


def sign(params: Mapping[str, str], secret: str) -> str:
    """JD Daojia's `sign` of `params` (any `sign` among them ignored)."""
    joined = "".join(f"{k}{params[k]}" for k in sorted(params) if k != "sign")
    return hashlib.md5(f"{secret}{joined}{secret}".encode()).hexdigest().upper()


class JddjAdapter(PlatformAdapter):
    name = NAME

    def client(self, session: aiohttp.ClientSession | None = None) -> JddjClient:
        return JddjClient(self.creds, session)

    def verify(self, request: PushRequest) -> None:
        check_signed_form(
            form_params(request),
            app_field="app_key",
            app_id=self.creds.app_id,
            sign_of=lambda params: sign(params, self.creds.secret),
        )

    def signed_at(self, request: PushRequest) -> float:
        return push_time(form_params(request), "timestamp", NAME)

    def parse_push(self, request: PushRequest) -> PlatformPush:
        params = form_params(request)
        if not params.get("jd_param_json"):
            raise PlatformBadRequest("jd_param_json is missing")
        message = json_object(params["jd_param_json"], "jd_param_json")
        bill = id_field(message, "billId", "jd_param_json.")
        status = text_field(message, "statusId", "jd_param_json.")
        if not status:
            raise PlatformBadRequest("jd_param_json.statusId is missing")
        if status in NEW_STATUSES:
            return PlatformPush(NAME, "new", bill, platform_status=status)
        if status in CANCELLED_STATUSES:
            reason = text_field(message, "remark", "jd_param_json.")
            return PlatformPush(NAME, "cancelled", bill, platform_status=status, reason=reason)
        return PlatformPush(NAME, "status", bill, platform_status=status)

    def reply_ok(self, push: PlatformPush | None = None) -> web.Response:
        return web.json_response({"code": "0", "msg": "success", "data": ""})

    def refusal(self, status: int, message: str, request: PushRequest | None) -> dict[str, Any]:
        return {"code": str(status), "msg": message, "data": ""}


def normalize(order: Mapping[str, Any]) -> NormalizedOrder:
    """One order of `/djapi/order/es/query`'s resultList."""
    items = read_items(order.get("product"), "product", ITEM_FIELDS)
    status = text_field(order, "orderStatus")
    return NormalizedOrder(
        platform=NAME,
        platform_order_id=id_field(order, "orderId"),
        shop_id=id_field(order, "produceStationNo"),
        day_seq=int_field(order, "orderNum", default=0, maximum=10**9),
        items=items,
        note=text_field(order, "orderBuyerRemark"),
        total=int_field(order, "orderBuyerPayableMoney", default=0),
        fees=int_field(order, "orderFreightMoney", default=0)
        + int_field(order, "packagingMoney", default=0),
        # The order query does not give JD's commission (the settlement API does).
        platform_status=status,
        cancelled=status in CANCELLED_STATUSES,
        # /djapi/order/es/query's buyer fields (buyerMobile: JD's virtual number).
        delivery=delivery_from(
            order.get("buyerFullAddress"),
            order.get("buyerMobile"),
            order.get("buyerLat"),
            order.get("buyerLng"),
        ),
    )


class JddjClient(PlatformClient):
    name = NAME
    default_url = "https://openapi.jddj.com"

    async def confirm_order(self, order: OrderRef) -> None:
        body = {"orderId": order.platform_order_id, "isAgreed": True, "operator": OPERATOR}
        await self.call("/djapi/ocs/orderAcceptOperate", body)

    async def picking_done(self, order: OrderRef) -> None:
        body = {"orderId": order.platform_order_id, "operator": OPERATOR}
        await self.call("/djapi/bm/open/api/order/OrderJDZBDelivery", body)

    async def update_stock(self, shop_id: str, items: Sequence[StockLine]) -> None:
        stock = [{"outSkuId": line.sku or line.barcode, "stockQty": line.qty} for line in items]
        body = {"outStationNo": shop_id, "userPin": OPERATOR, "skuStockList": stock}
        await self.call("/djapi/stock/batchUpdateCurrentQtys", body)

    async def fetch_order(self, push: PlatformPush) -> NormalizedOrder:
        result = await self.call("/djapi/order/es/query", {"orderId": push.platform_order_id})
        found = result.get("resultList") if isinstance(result, Mapping) else None
        if not isinstance(found, list) or not found or not isinstance(found[0], Mapping):
            raise PlatformCallError(f"jddj order query found no order {push.platform_order_id}")
        try:
            return normalize(found[0])
        except PlatformBadRequest as e:
            raise PlatformCallError(f"jddj order query: {e}") from None

    async def call(self, path: str, body: Mapping[str, Any]) -> Any:
        params = {
            "app_key": self.creds.app_id,
            "token": self.creds.token,
            "timestamp": dt.datetime.now(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
            "format": "json",
            "v": "1.0",
            "jd_param_json": json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        }
        params["sign"] = sign(params, self.creds.secret)
        answer = await self.post(self.base_url + path, what=f"jddj {path}", data=params)
        if not isinstance(answer, dict) or str(answer.get("code")) != "0":
            raise PlatformCallError(f"jddj {path} refused: {json.dumps(answer)[:300]}")
        # `data` is JSON inside a string: {"code": "0", "msg": ..., "result": ...}.
        data = answer.get("data")
        if isinstance(data, str) and data:
            try:
                data = json_value(data, "data")
            except PlatformBadRequest as e:
                raise PlatformCallError(f"jddj {path}: {e}") from None
        if isinstance(data, dict) and "code" in data and str(data["code"]) != "0":
            raise PlatformCallError(f"jddj {path} refused: {json.dumps(data)[:300]}")
        return data.get("result") if isinstance(data, dict) else data
