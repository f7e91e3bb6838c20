"""Fake ERPs on loopback: 旺店通 (openapi2) and 聚水潭 (open platform), each checking every
call's signature as the ERP does, keeping what it was sent, and able to be "down".

    async with FakeWdt() as wdt:                 # sid/appkey "demo", secret "demo-secret"
        cfg["erp"]["wdt"] = {"app_id": "demo", "secret": "demo-secret", "url": wdt.url}
        ...
        assert wdt.trades["meituan-1001"]["paid"] == "22.00"
        wdt.down("503")      # every call answered 503; wdt.down("refuse"): port closed
        wdt.up()

The signing here is written apart from cloud/erp (from the ERPs' published rules), so a
mistake in the hub's signing shows up as a refused call rather than hiding on both sides.
A call with a bad signature is answered as the ERP answers it (旺店通 code 100, 聚水潭
a non-zero code) and recorded with signature_ok False.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

APP_KEY = "demo"
SECRET = "demo-secret"
TOKEN = "jst-access-token"
MAX_SKEW_S = 300  # 旺店通: "允许请求最大时间误差为5min"


def wdt_sign(params: dict[str, str], secret: str) -> str:
    # Lengths in characters, as the official PHP client's iconv_strlen($v, 'UTF-8').
    pieces = []
    for key in sorted(params):
        if key == "sign":
            continue
        value = params[key]
        pieces.append(f"{len(key):02d}-{key}:{len(value):04d}-{value}")
    return hashlib.md5((";".join(pieces) + secret).encode("utf-8")).hexdigest()


def jst_sign(params: dict[str, str], secret: str) -> str:
    text = secret + "".join(f"{k}{params[k]}" for k in sorted(params) if k != "sign")
    return hashlib.md5(text.encode("utf-8")).hexdigest()


@dataclass
class ErpCall:
    endpoint: str
    params: dict[str, str]
    signature_ok: bool
    at: float = field(default_factory=time.time)


class _FakeErp:
    def __init__(self) -> None:
        self.calls: list[ErpCall] = []
        self.stock: dict[str, tuple[int, str]] = {}  # barcode -> (qty, modified)
        self._mode: Literal["up", "503", "refuse"] = "up"
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> web.Application:
        raise NotImplementedError

    async def __aenter__(self) -> _FakeErp:
        self._runner = web.AppRunner(self.app())
        await self._runner.setup()
        await self._listen()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()
        if not self.port:
            self.port = self._runner.addresses[0][1]

    async def down(self, mode: Literal["503", "refuse"] = "503") -> None:
        """503: answer every call 503; refuse: stop listening (connection refused)."""
        self._mode = mode
        if mode == "refuse" and self._site is not None:
            await self._site.stop()
            self._site = None

    async def up(self) -> None:
        if self._site is None:
            await self._listen()
        self._mode = "up"

    def calls_to(self, endpoint: str, *, signed: bool = True) -> list[ErpCall]:
        return [c for c in self.calls if c.endpoint == endpoint and c.signature_ok == signed]

    def _unavailable(self, request: web.Request) -> web.Response:
        if self._mode == "refuse" and request.transport is not None:
            # A connection kept alive from before the port closed: drop it too.
            request.transport.close()
        return web.Response(status=503, text="service unavailable")

    async def _form(self, request: web.Request) -> dict[str, str]:
        form = await request.post()
        return {k: str(v) for k, v in form.items()}


class FakeWdt(_FakeErp):
    """旺店通 openapi2 at `<url>/openapi2/<name>.php`."""

    def __init__(self, sid: str = APP_KEY, appkey: str = APP_KEY, secret: str = SECRET) -> None:
        super().__init__()
        self.sid, self.appkey, self.secret = sid, appkey, secret
        self.trades: dict[str, dict[str, Any]] = {}
        self.trade_pushes: list[str] = []  # tid of every accepted push, repeats included
        self.refunds: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.goods: dict[str, dict[str, Any]] = {}
        self.stock_takes: dict[str, list[dict[str, Any]]] = {}  # api_outer_no -> goods_list

    @property
    def api_url(self) -> str:
        return f"{self.url}/openapi2"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/openapi2/{name}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        if self._mode != "up":
            return self._unavailable(request)
        name = request.match_info["name"]
        params = await self._form(request)
        ok = (
            params.get("sign") == wdt_sign(params, self.secret)
            and params.get("sid") == self.sid
            and params.get("appkey") == self.appkey
        )
        self.calls.append(ErpCall(name, params, ok))
        if not ok:
            return web.json_response({"code": 100, "message": "无效sign"})
        try:
            skew = abs(time.time() - int(params.get("timestamp", "0")))
        except ValueError:
            skew = MAX_SKEW_S + 1
        if skew > MAX_SKEW_S:
            return web.json_response({"code": 100, "message": "无效timestamp"})
        handler = {
            "trade_push.php": self._trade_push,
            "sales_refund_push.php": self._refund_push,
            "raw_payment_push.php": self._payment_push,
            "goods_push.php": self._goods_push,
            "stock_query.php": self._stock_query,
            "stock_sync_by_pd.php": self._stock_sync,
        }.get(name)
        if handler is None:
            return web.json_response({"code": 404, "message": f"no api {name}"})
        return web.json_response(handler(params))

    def _trade_push(self, params: dict[str, str]) -> dict[str, Any]:
        new = chg = 0
        for trade in json.loads(params["trade_list"]):
            trade["shop_no"] = params["shop_no"]
            if trade["tid"] in self.trades:
                chg += 1
            else:
                new += 1
            self.trades[trade["tid"]] = trade
            self.trade_pushes.append(trade["tid"])
        return {"code": 0, "message": "", "new_count": new, "chg_count": chg}

    def _refund_push(self, params: dict[str, str]) -> dict[str, Any]:
        for refund in json.loads(params["api_refund_list"]):
            if refund["tid"] not in self.trades:
                return {"code": 5040, "message": "售后单关联的原始单不存在"}
            self.refunds[refund["refund_no"]] = refund
        return {"code": 0, "message": "", "new_count": 1, "chg_count": 0}

    def _payment_push(self, params: dict[str, str]) -> dict[str, Any]:
        for row in json.loads(params["payment_list"]):
            self.payments[row["pay_order_no"]] = row
        return {"code": 0, "message": ""}

    def _goods_push(self, params: dict[str, str]) -> dict[str, Any]:
        for goods in json.loads(params["goods_list"]):
            self.goods[goods["goods_no"]] = goods
        return {"code": 0, "message": ""}

    def _stock_query(self, params: dict[str, str]) -> dict[str, Any]:
        wanted = json.loads(params.get("spec_no_list", "[]"))
        page, size = int(params.get("page_no", 0)), int(params.get("page_size", 100))
        found = [b for b in wanted if b in self.stock]
        stocks = [
            {"spec_no": b, "barcode": b, "stock_num": f"{self.stock[b][0]}.0000",
             "modified": self.stock[b][1]}
            for b in found[page * size : (page + 1) * size]
        ]  # fmt: skip
        return {"code": 0, "message": "", "total_count": len(found), "stocks": stocks}

    def _stock_sync(self, params: dict[str, str]) -> dict[str, Any]:
        outer = params["api_outer_no"]
        if outer in self.stock_takes:
            return {
                "code": 21000006,
                "message": "外部单号重复，请保证外部单号[api_outer_no]的唯一性",
            }
        goods = json.loads(params["goods_list"])
        self.stock_takes[outer] = goods
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        for line in goods:
            self.stock[line["spec_no"]] = (int(line["stock_num"]), stamp)
        return {"code": 0, "message": "", "warning": []}


class FakeJst(_FakeErp):
    """聚水潭 open platform at `<url>/open/...`."""

    def __init__(self, app_key: str = APP_KEY, secret: str = SECRET, token: str = TOKEN) -> None:
        super().__init__()
        self.app_key, self.secret, self.token = app_key, secret, token
        self.orders: dict[str, dict[str, Any]] = {}
        self.aftersales: dict[str, dict[str, Any]] = {}
        self.items: dict[str, dict[str, Any]] = {}
        self.stock_takes: dict[str, dict[str, Any]] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/open/{path:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        if self._mode != "up":
            return self._unavailable(request)
        path = "/open/" + request.match_info["path"]
        params = await self._form(request)
        ok = (
            params.get("sign") == jst_sign(params, self.secret)
            and params.get("app_key") == self.app_key
            and params.get("access_token") == self.token
            and params.get("charset") == "utf-8"
            and params.get("version") == "2"
        )
        self.calls.append(ErpCall(path, params, ok))
        if not ok:
            return web.json_response({"code": 100, "msg": "签名错误", "data": None})
        biz = json.loads(params["biz"])
        handler = {
            "/open/jushuitan/orders/upload": self._orders,
            "/open/aftersale/upload": self._aftersale,
            "/open/jushuitan/itemsku/upload": self._items,
            "/open/inventory/query": self._inventory,
            "/open/jushuitan/inventoryv2/upload": self._inventory_upload,
        }.get(path)
        if handler is None:
            return web.json_response({"code": 404, "msg": f"no api {path}", "data": None})
        return web.json_response(handler(biz))

    def _orders(self, biz: list[dict[str, Any]]) -> dict[str, Any]:
        for order in biz:
            self.orders[order["so_id"]] = order
        return {"code": 0, "msg": "执行成功", "data": {"datas": []}}

    def _aftersale(self, biz: list[dict[str, Any]]) -> dict[str, Any]:
        for item in biz:
            self.aftersales[item["outer_as_id"]] = item
        return {"code": 0, "msg": "执行成功", "data": {"datas": []}}

    def _items(self, biz: dict[str, Any]) -> dict[str, Any]:
        for item in biz["items"]:
            self.items[item["sku_id"]] = item
        return {"code": 0, "msg": "执行成功", "data": {}}

    def _inventory(self, biz: dict[str, Any]) -> dict[str, Any]:
        wanted = [s for s in str(biz.get("sku_ids", "")).split(",") if s in self.stock]
        page, size = int(biz.get("page_index", 1)), int(biz.get("page_size", 100))
        rows = wanted[(page - 1) * size : page * size]
        inventorys = [
            {"sku_id": s, "qty": self.stock[s][0], "modified": self.stock[s][1]} for s in rows
        ]
        has_next = page * size < len(wanted)
        return {
            "code": 0,
            "msg": "执行成功",
            "data": {"inventorys": inventorys, "has_next": has_next},
        }

    def _inventory_upload(self, biz: dict[str, Any]) -> dict[str, Any]:
        self.stock_takes[biz["so_id"]] = biz
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        for item in biz["items"]:
            self.stock[item["sku_id"]] = (int(item["qty"]), stamp)
        return {"code": 0, "msg": "执行成功", "data": {}}
