"""Fake delivery platforms: a loopback HTTP server that pushes orders to the hub signed as
the platform does, serves the platform API the hub calls back, and checks the hub's
signatures on every call.

    async with FakePlatform("meituan") as fake:               # app_id demo, secret demo-secret
        cfg["platforms"]["meituan"]["url"] = fake.url          # the hub calls it back here
        status, body = await fake.push_order(hub_url, FakeOrder("1001", items=[...]))
        call = await fake.wait_for_call("confirm_order")
        assert call.signature_ok

The signing here is written apart from cloud/platforms (from the platforms' published
rules), so that a mistake in the hub's signing shows up as a refused call rather than
hiding on both sides. `fail_next(kind, n)` makes the next n calls of a kind fail as the
platform would answer them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

PLATFORMS = ("meituan", "eleme", "jddj", "douyin")
SHOP = "demo-001"


@dataclass
class FakeItem:
    sku: str
    barcode: str
    name: str
    qty: int
    price: int  # fen


@dataclass
class FakeOrder:
    order_id: str
    shop: str = SHOP
    day_seq: int = 7
    items: list[FakeItem] = field(
        default_factory=lambda: [
            FakeItem("sku-cola", "6901234567892", "可口可乐 330ml", 2, 350),
            FakeItem("sku-chips", "6920000000017", "薯片 Chips", 1, 1250),
        ]
    )
    note: str = "少放冰 no ice"
    # Where it goes and the customer's number as platforms give it (masked/virtual).
    address: str = "上海市徐汇区漕溪北路 88 号 3 楼"
    phone: str = "138****5678"
    lat: float = 31.1935
    lng: float = 121.4365
    total: int = 1950  # fen
    fees: int = 0
    commission: int = 195


@dataclass
class Call:
    kind: str  # confirm_order | picking_done | update_stock | fetch_order | unknown
    params: dict[str, Any]
    signature_ok: bool
    path: str


def md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


# -- each platform's signature, as its documentation states it ---------------------------


def meituan_sig(url: str, params: Mapping[str, str], secret: str) -> str:
    keys = sorted(k for k in params if k != "sig")
    return md5(url + "?" + "&".join(k + "=" + str(params[k]) for k in keys) + secret)


def eleme_sign(params: Mapping[str, str], secret: str) -> str:
    fields = ["cmd", "timestamp", "ticket", "version", "source", "encrypt", "body"]
    signed = {k: params[k] for k in fields if k in params} | {"secret": secret}
    return md5("&".join(f"{k}={signed[k]}" for k in sorted(signed))).upper()


def jddj_sign(params: Mapping[str, str], secret: str) -> str:
    inner = "".join(k + str(params[k]) for k in sorted(params) if k != "sign")
    return md5(secret + inner + secret).upper()


def douyin_sign(
    app_key: str, method: str, param_json: str, timestamp: str, secret: str, sign_method: str
) -> str:
    parts = [secret, "app_key", app_key, "method", method, "param_json", param_json]
    parts += ["timestamp", timestamp, "v", "2", secret]
    text = "".join(parts)
    if sign_method == "hmac-sha256":
        return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return md5(text)


def douyin_event_sign(app_key: str, body: bytes, secret: str, sign_method: str = "md5") -> str:
    text = app_key + body.decode() + secret
    if sign_method == "hmac-sha256":
        return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return md5(text)


def _yuan(fen: int) -> str:
    return str(Decimal(fen) / 100)


def _china_now() -> str:
    return _china_time(time.time())


def _china_time(at: float) -> str:
    """JD Daojia's timestamps: local time in China, to the second."""
    china = dt.timezone(dt.timedelta(hours=8))
    return dt.datetime.fromtimestamp(at, china).strftime("%Y-%m-%d %H:%M:%S")


class FakePlatform:
    def __init__(
        self, name: str, app_id: str = "demo", secret: str = "demo-secret", *, token: str = ""
    ) -> None:
        assert name in PLATFORMS, name
        self.name = name
        self.app_id = app_id
        self.secret = secret
        self.token = token
        self.orders: dict[str, FakeOrder] = {}
        self.calls: list[Call] = []
        # Stock as the platform shows it per SKU, and every (sku, qty) it was told, in order.
        self.stock: dict[str, int] = {}
        self.stock_log: list[tuple[str, int]] = []
        self._fail: dict[str, int] = {}
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._new_call = asyncio.Condition()
        self.port = 0
        self._msg_ids = itertools.count(1)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, port: int = 0) -> FakePlatform:
        """Listen on loopback, on `port` (0: any free one; an old one: the platform back)."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._session = aiohttp.ClientSession()
        return self

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakePlatform:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        """The API base URL to configure as platforms.<name>.url."""
        root = f"http://127.0.0.1:{self.port}"
        return root + "/api/v1" if self.name == "meituan" else root

    @staticmethod
    def webhook(hub_url: str, name: str) -> str:
        return f"{hub_url.rstrip('/')}/api/v1/platforms/{name}/push"

    # -- what the tests look at -----------------------------------------------------------

    def fail_next(self, kind: str, times: int = 1) -> None:
        self._fail[kind] = self._fail.get(kind, 0) + times

    def calls_of(self, kind: str) -> list[Call]:
        return [c for c in self.calls if c.kind == kind]

    async def wait_for_call(self, kind: str, count: int = 1, within_s: float = 5.0) -> Call:
        """The `count`-th call of `kind` (waiting for it)."""
        async with asyncio.timeout(within_s), self._new_call:
            await self._new_call.wait_for(lambda: len(self.calls_of(kind)) >= count)
        return self.calls_of(kind)[count - 1]

    async def wait_for_stock(self, sku: str, qty: int, within_s: float = 5.0) -> None:
        """Wait until the platform shows `qty` for `sku`."""
        async with asyncio.timeout(within_s), self._new_call:
            await self._new_call.wait_for(lambda: self.stock.get(sku) == qty)

    def stock_calls_of(self, sku: str) -> list[int]:
        """Every quantity the platform was told for `sku`, in order."""
        return [q for s, q in self.stock_log if s == sku]

    async def _apply_stock(self, lines: list[tuple[str, int]]) -> None:
        async with self._new_call:
            for sku, qty in lines:
                self.stock[sku] = qty
                self.stock_log.append((sku, qty))
            self._new_call.notify_all()

    # -- pushes to the hub ----------------------------------------------------------------

    async def push_order(
        self, hub_url: str, order: FakeOrder, *, secret: str | None = None, at: float | None = None
    ) -> tuple[int, Any]:
        """Push a new order, signed with `secret` (default: the right one) at the time `at`
        (Unix seconds; default now): the timestamp the platform puts into what it signs."""
        self.orders[order.order_id] = order
        return await self._push(hub_url, self._new_order_push(order), secret, at)

    async def push_cancel(
        self, hub_url: str, order_id: str, reason: str = "用户取消 customer cancelled"
    ) -> tuple[int, Any]:
        return await self._push(hub_url, self._cancel_push(order_id, reason), None)

    async def push_refund(
        self, hub_url: str, order_id: str, reason: str = "退款 refund"
    ) -> tuple[int, Any]:
        return await self._push(hub_url, self._refund_push(order_id, reason), None)

    async def push_raw(
        self, hub_url: str, data: bytes, headers: Mapping[str, str] | None = None
    ) -> tuple[int, Any]:
        return await self._post(self.webhook(hub_url, self.name), data, dict(headers or {}))

    async def push_signed_params(
        self, hub_url: str, params: dict[str, str], *, at: float | None = None
    ) -> tuple[int, Any]:
        """A form push of these params, signed properly (for malformed-content tests)."""
        return await self._push(hub_url, ("form", params), None, at)

    async def push_order_with_signature(
        self, hub_url: str, order: FakeOrder, signature: str
    ) -> tuple[int, Any]:
        """A new order push carrying `signature` as it is in place of the platform's (a
        forger's guess, or text no platform sends: not hex, not ASCII)."""
        self.orders[order.order_id] = order
        url = self.webhook(hub_url, self.name)
        shape, content = self._new_order_push(order)
        if shape == "json":
            headers = {
                "Content-Type": "application/json",
                "app-id": self.app_id,
                "event-sign": signature,
            }
            return await self._post(url, content, headers)
        params = self._signed(url, dict(content), self.secret, time.time())
        params["sig" if self.name == "meituan" else "sign"] = signature
        assert self._session is not None
        async with self._session.post(url, data=params) as resp:
            return resp.status, await _json_or_text(resp)

    async def push_signed_body(self, hub_url: str, body: bytes) -> tuple[int, Any]:
        """Douyin: this body, with a correct event-sign."""
        return await self._push(hub_url, ("json", body), None)

    async def _push(
        self, hub_url: str, push: tuple[str, Any], secret: str | None, at: float | None = None
    ) -> tuple[int, Any]:
        secret = self.secret if secret is None else secret
        url = self.webhook(hub_url, self.name)
        shape, content = push
        if shape == "json":
            body: bytes = content
            headers = {
                "Content-Type": "application/json",
                "app-id": self.app_id,
                "sign-method": "md5",
                "event-sign": douyin_event_sign(self.app_id, body, secret),
            }
            return await self._post(url, body, headers)
        params = self._signed(url, dict(content), secret, time.time() if at is None else at)
        assert self._session is not None
        async with self._session.post(url, data=params) as resp:
            return resp.status, await _json_or_text(resp)

    async def _post(self, url: str, data: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        assert self._session is not None
        async with self._session.post(url, data=data, headers=headers) as resp:
            return resp.status, await _json_or_text(resp)

    def _signed(self, url: str, params: dict[str, str], secret: str, at: float) -> dict[str, str]:
        if self.name == "meituan":
            params.setdefault("app_id", self.app_id)
            params.setdefault("timestamp", str(int(at)))
            params["sig"] = meituan_sig(url, params, secret)
        elif self.name == "eleme":
            params.setdefault("source", self.app_id)
            params.setdefault("ticket", str(uuid.uuid4()).upper())
            params.setdefault("timestamp", str(int(at)))
            params.setdefault("version", "3")
            params.setdefault("encrypt", "")
            params["sign"] = eleme_sign(params, secret)
        elif self.name == "jddj":
            params.setdefault("app_key", self.app_id)
            params.setdefault("token", self.token)
            params.setdefault("timestamp", _china_time(at))
            params.setdefault("format", "json")
            params.setdefault("v", "1.0")
            params["sign"] = jddj_sign(params, secret)
        return params

    def _new_order_push(self, order: FakeOrder) -> tuple[str, Any]:
        if self.name == "meituan":
            detail = [
                {
                    "app_food_code": i.sku,
                    "sku_id": i.sku,
                    "upc": i.barcode,
                    "food_name": i.name,
                    "quantity": i.qty,
                    "price": float(Decimal(i.price) / 100),
                    "unit": "份",
                }
                for i in order.items
            ]
            return "form", {
                "order_id": order.order_id,
                "wm_order_id_view": f"2700{order.order_id}",
                "app_poi_code": order.shop,
                "day_seq": str(order.day_seq),
                "status": "2",
                # Meituan URL-encodes the JSON once more inside the form.
                "detail": quote(json.dumps(detail, ensure_ascii=False)),
                "caution": order.note,
                "recipient_address": order.address,
                "recipient_phone": order.phone,
                "latitude": str(order.lat),
                "longitude": str(order.lng),
                "total": _yuan(order.total),
                "shipping_fee": _yuan(order.fees),
                "poi_receive_detail": json.dumps({"foodShareFeeChargeByPoi": order.commission}),
                "ctime": str(int(time.time())),
            }
        if self.name == "eleme":
            body = json.dumps({"order_id": order.order_id})
            return "form", {"cmd": "order.create", "body": body}
        if self.name == "jddj":
            message = {"billId": order.order_id, "statusId": "32000", "timestamp": _china_now()}
            return "form", {"jd_param_json": json.dumps(message)}
        return "json", self._douyin_messages("101", order.order_id, order.shop)

    def _cancel_push(self, order_id: str, reason: str) -> tuple[str, Any]:
        shop = self.orders[order_id].shop if order_id in self.orders else SHOP
        if self.name == "meituan":
            return "form", {"order_id": order_id, "reason_code": "1001", "reason": reason}
        if self.name == "eleme":
            body = {"order_id": order_id, "status": 10, "reason": reason}
            return "form", {"cmd": "order.status.push", "body": json.dumps(body)}
        if self.name == "jddj":
            message = {"billId": order_id, "statusId": "20020", "timestamp": _china_now()}
            return "form", {"jd_param_json": json.dumps(message)}
        return "json", self._douyin_messages("106", order_id, shop, cancel_reason=reason)

    def _refund_push(self, order_id: str, reason: str) -> tuple[str, Any]:
        shop = self.orders[order_id].shop if order_id in self.orders else SHOP
        if self.name == "meituan":
            return "form", {"order_id": order_id, "notify_type": "agree", "reason": reason}
        if self.name == "eleme":
            body = {"order_id": order_id, "status": 15, "reason": reason}
            return "form", {"cmd": "order.status.push", "body": json.dumps(body)}
        if self.name == "jddj":
            # JD reports a refund of a delivered order as a cancellation of it.
            message = {"billId": order_id, "statusId": "20020", "timestamp": _china_now()}
            return "form", {"jd_param_json": json.dumps(message)}
        return "json", self._douyin_messages("206", order_id, shop)

    def _douyin_messages(self, tag: str, order_id: str, shop: str, **extra: Any) -> bytes:
        data = {"p_id": int(order_id), "s_ids": [int(order_id) + 1], "shop_id": shop, **extra}
        message = {"tag": tag, "msg_id": str(next(self._msg_ids)), "data": json.dumps(data)}
        return json.dumps([message]).encode()

    # -- the platform API the hub calls ---------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        handler = {
            "meituan": self._meituan_api,
            "eleme": self._eleme_api,
            "jddj": self._jddj_api,
            "douyin": self._douyin_api,
        }[self.name]
        return await handler(request)

    async def _record(self, call: Call) -> bool:
        """Record a call; whether to fail it (fail_next, or a bad signature)."""
        async with self._new_call:
            self.calls.append(call)
            self._new_call.notify_all()
        if self._fail.get(call.kind, 0) > 0:
            self._fail[call.kind] -= 1
            return True
        return not call.signature_ok

    async def _meituan_api(self, request: web.Request) -> web.Response:
        params = dict(request.query) | dict(await request.post())
        url = str(request.url.with_query(None))
        ok = params.get("sig") == meituan_sig(url, params, self.secret)
        ok = ok and params.get("app_id") == self.app_id
        path = request.path.removeprefix("/api/v1")
        kind = {
            "/order/confirm": "confirm_order",
            "/order/preparationMealComplete": "picking_done",
            "/retail/sku/stock": "update_stock",
        }.get(path, "unknown")
        if await self._record(Call(kind, params, ok, request.path)):
            error = {"code": 703 if not ok else 808, "msg": "签名验证错误" if not ok else "busy"}
            return web.json_response({"data": "ng", "error": error})
        if kind == "update_stock":
            try:
                await self._apply_stock(meituan_stock(params))
            except (ValueError, KeyError, TypeError) as e:
                return web.json_response({"data": "ng", "error": {"code": 1, "msg": str(e)}})
        return web.json_response({"data": "ok"})

    async def _eleme_api(self, request: web.Request) -> web.Response:
        params = {k: str(v) for k, v in (await request.post()).items()}
        ok = params.get("sign") == eleme_sign(params, self.secret)
        ok = ok and params.get("source") == self.app_id and "secret" not in params
        cmd = params.get("cmd", "")
        kind = {
            "order.confirm": "confirm_order",
            "order.pickcomplete": "picking_done",
            "sku.stock.update.batch": "update_stock",
            "order.get": "fetch_order",
        }.get(cmd, "unknown")
        body = json.loads(params.get("body") or "{}")
        reply: dict[str, Any] = {"errno": 0, "error": "success", "data": ""}
        if await self._record(Call(kind, {**params, "body": body}, ok, request.path)):
            reply = {"errno": 20253 if not ok else 1, "error": "sign error" if not ok else "busy"}
        elif kind == "update_stock":
            try:
                await self._apply_stock(eleme_stock(body))
            except (ValueError, KeyError, TypeError) as e:
                reply = {"errno": 1, "error": f"bad stock: {e}", "data": ""}
        elif kind == "fetch_order":
            order = self.orders.get(str(body.get("order_id")))
            if order is None:
                reply = {"errno": 1, "error": "no such order", "data": ""}
            else:
                reply["data"] = self._eleme_order(order)
        answer = {
            "body": reply,
            "cmd": "resp." + cmd,
            "encrypt": "",
            "source": self.app_id,
            "ticket": params.get("ticket", ""),
            "timestamp": int(time.time()),
            "version": "3",
        }
        return web.json_response(answer)

    def _eleme_order(self, order: FakeOrder) -> dict[str, Any]:
        return {
            "source": self.app_id,
            "shop": {"id": order.shop, "name": "演示店", "baidu_shop_id": "32267034"},
            "order": {
                "order_id": order.order_id,
                "eleme_order_id": f"5012{order.order_id}",
                "order_index": order.day_seq,
                "status": 1,
                "remark": order.note,
                "user_fee": order.total,
                "send_fee": order.fees,
                "package_fee": 0,
                "commission": order.commission,
            },
            "user": {
                "address": order.address,
                "phone": order.phone,
                "coord": {"latitude": order.lat, "longitude": order.lng},
            },
            "products": [
                [
                    {
                        "custom_sku_id": i.sku,
                        "upc": i.barcode,
                        "product_name": i.name,
                        "product_amount": i.qty,
                        "product_price": i.price,
                    }
                    for i in order.items
                ]
            ],
        }

    async def _jddj_api(self, request: web.Request) -> web.Response:
        params = {k: str(v) for k, v in (await request.post()).items()}
        ok = params.get("sign") == jddj_sign(params, self.secret)
        ok = ok and params.get("app_key") == self.app_id and params.get("token") == self.token
        kind = {
            "/djapi/ocs/orderAcceptOperate": "confirm_order",
            "/djapi/bm/open/api/order/OrderJDZBDelivery": "picking_done",
            "/djapi/stock/batchUpdateCurrentQtys": "update_stock",
            "/djapi/order/es/query": "fetch_order",
        }.get(request.path, "unknown")
        body = json.loads(params.get("jd_param_json") or "{}")
        if await self._record(Call(kind, {**params, "jd_param_json": body}, ok, request.path)):
            if not ok:
                return web.json_response({"code": "10014", "msg": "签名错误", "data": ""})
            inner = {"code": "-1", "msg": "busy", "result": None}
            return web.json_response({"code": "0", "msg": "ok", "data": json.dumps(inner)})
        result: Any = True
        if kind == "update_stock":
            try:
                await self._apply_stock(jddj_stock(body, self.token))
            except (ValueError, KeyError, TypeError) as e:
                inner = {"code": "1", "msg": f"bad stock: {e}", "result": None}
                return web.json_response({"code": "0", "msg": "ok", "data": json.dumps(inner)})
        if kind == "fetch_order":
            order = self.orders.get(str(body.get("orderId")))
            result = {"resultList": [self._jddj_order(order)] if order else [], "totalCount": 1}
        inner = {"code": "0", "msg": "成功", "result": result}
        return web.json_response({"code": "0", "msg": "成功", "data": json.dumps(inner)})

    def _jddj_order(self, order: FakeOrder) -> dict[str, Any]:
        return {
            "orderId": int(order.order_id),
            "orderNum": order.day_seq,
            "orderStatus": 32000,
            "produceStationNo": order.shop,
            "produceStationName": "演示店",
            "orderBuyerRemark": order.note,
            "buyerFullAddress": order.address,
            "buyerMobile": order.phone,
            "buyerLat": order.lat,
            "buyerLng": order.lng,
            "orderBuyerPayableMoney": order.total,
            "orderFreightMoney": order.fees,
            "packagingMoney": 0,
            "product": [
                {
                    "skuId": 2000000 + n,
                    "skuIdIsv": i.sku,
                    "upcCode": i.barcode,
                    "skuName": i.name,
                    "skuCount": i.qty,
                    "skuJdPrice": i.price,
                }
                for n, i in enumerate(order.items)
            ],
        }

    async def _douyin_api(self, request: web.Request) -> web.Response:
        q = request.query
        body = await request.read()
        method = q.get("method", "")
        sign_method = q.get("sign_method", "md5")
        expected = douyin_sign(
            self.app_id,
            method,
            q.get("param_json", ""),
            q.get("timestamp", ""),
            self.secret,
            sign_method,
        )
        ok = q.get("sign") == expected and q.get("app_key") == self.app_id
        ok = ok and request.path == "/" + method.replace(".", "/") and q.get("v") == "2"
        ok = ok and body.decode() == q.get("param_json") and q.get("access_token") == self.token
        # param_json must have its keys sorted, with no spaces.
        args = json.loads(body or b"{}")
        ok = ok and body.decode() == json.dumps(
            args, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        kind = {
            "order.orderConfirm": "confirm_order",
            "instantShopping.notifyPickingStatus": "picking_done",
            "sku.syncStock": "update_stock",
            "order.orderDetail": "fetch_order",
        }.get(method, "unknown")
        if await self._record(Call(kind, {**dict(q), "args": args}, ok, request.path)):
            code, msg = (40004, "签名错误") if not ok else (50002, "busy")
            return web.json_response({"code": code, "msg": msg, "sub_code": "isv.sign", "data": {}})
        data: Any = {}
        if kind == "update_stock":
            try:
                await self._apply_stock(douyin_stock(args))
            except (ValueError, KeyError, TypeError) as e:
                return web.json_response({"code": 40001, "msg": f"bad stock: {e}", "data": {}})
        if kind == "fetch_order":
            order = self.orders.get(str(args.get("shop_order_id")))
            data = {"shop_order_detail": self._douyin_order(order)} if order else {}
        return web.json_response({"code": 10000, "msg": "success", "data": data})

    def _douyin_order(self, order: FakeOrder) -> dict[str, Any]:
        return {
            "order_id": order.order_id,
            "shop_id": order.shop,
            "order_status": 2,
            "buyer_words": order.note,
            "post_addr": {"detail": order.address},
            "post_tel": order.phone,
            "pay_amount": order.total,
            "post_amount": order.fees,
            "sku_order_list": [
                {
                    "sku_id": 3000000 + n,
                    "out_sku_id": i.sku,
                    "code": i.barcode,
                    "product_name": i.name,
                    "item_num": i.qty,
                    "goods_price": i.price,
                }
                for n, i in enumerate(order.items)
            ],
        }


# -- each platform's stock call, read as its documentation states it ----------------------
# Each returns [(sku, qty), ...] or raises ValueError for a call the platform would refuse.


def _whole(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise ValueError(f"{what} must be a whole number >= 0, got {value!r}")
    return int(value)


def meituan_stock(params: Mapping[str, Any]) -> list[tuple[str, int]]:
    """retail/sku/stock: app_poi_code, food_data = JSON [{app_food_code, skus: [{sku_id,
    stock (a string)}]}], up to 200 products."""
    if not params.get("app_poi_code"):
        raise ValueError("app_poi_code is missing")
    food = json.loads(params["food_data"])
    if not isinstance(food, list) or not 0 < len(food) <= 200:
        raise ValueError("food_data must list 1-200 products")
    out = []
    for f in food:
        if not f["app_food_code"]:
            raise ValueError("app_food_code is missing")
        for sku in f["skus"]:
            if not isinstance(sku["stock"], str):
                raise ValueError("stock must be a string")
            out.append((str(sku["sku_id"]), _whole(sku["stock"], "stock")))
    return out


def eleme_stock(body: Mapping[str, Any]) -> list[tuple[str, int]]:
    """sku.stock.update.batch: shop_id, and custom_sku_id or upc = "id:qty;id:qty",
    up to 100."""
    if not body.get("shop_id"):
        raise ValueError("shop_id is missing")
    out = []
    for key in ("custom_sku_id", "upc", "sku_id"):
        for pair in filter(None, str(body.get(key, "")).split(";")):
            sku, _, qty = pair.rpartition(":")
            if not sku:
                raise ValueError(f"{key} pairs are id:stock, got {pair!r}")
            out.append((sku, _whole(qty, key)))
    if not 0 < len(out) <= 100:
        raise ValueError("1-100 SKUs per call")
    return out


def jddj_stock(body: Mapping[str, Any], token: str) -> list[tuple[str, int]]:
    """stock/batchUpdateCurrentQtys: outStationNo, userPin, skuStockList = [{outSkuId,
    stockQty}], up to 50."""
    if not body.get("outStationNo") or not body.get("userPin"):
        raise ValueError("outStationNo and userPin are required")
    lines = body["skuStockList"]
    if not isinstance(lines, list) or not 0 < len(lines) <= 50:
        raise ValueError("skuStockList must list 1-50 SKUs")
    out = []
    for line in lines:
        if not isinstance(line["stockQty"], int):
            raise ValueError("stockQty must be a number")
        out.append((str(line["outSkuId"]), _whole(line["stockQty"], "stockQty")))
    return out


def douyin_stock(args: Mapping[str, Any]) -> list[tuple[str, int]]:
    """sku.syncStock: one SKU by code (or sku_id), stock_num, incremental false = set."""
    if args.get("incremental") is not False:
        raise ValueError("incremental must be false to set the stock")
    sku = args.get("code") or args.get("sku_id")
    if not sku:
        raise ValueError("code or sku_id is required")
    if not isinstance(args.get("stock_num"), int):
        raise ValueError("stock_num must be a number")
    return [(str(sku), _whole(args["stock_num"], "stock_num"))]


async def _json_or_text(resp: aiohttp.ClientResponse) -> Any:
    text = await resp.text()
    try:
        return json.loads(text)
    except ValueError:
        return text
