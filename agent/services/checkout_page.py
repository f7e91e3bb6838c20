"""The checkout's own page, for a cheap tablet beside the scanner (aiohttp, no script).

    GET  /        the cart, the total, messages and, while paying, the pay QR; the page
                  reloads itself every REFRESH_S seconds (<meta http-equiv=refresh>), so
                  any browser that can show HTML follows the scans
    GET  /state   the same as JSON (for a kiosk app or a test)
    POST /pay     付款: ask the hub for a payment of the total
    POST /clear   清空: empty the cart (and cancel a payment not yet made)

Served on the store's LAN only (the checkout's `listen`): it shows carts, never secrets.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any

import jinja2
import qrcode
import qrcode.image.svg
from aiohttp import web

REFRESH_S = 2

_PAGE = jinja2.Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{{ refresh }}">
<link rel="icon" href="data:,">
<title>自助收银</title>
<style>
body{margin:0;background:#f3f5f4;color:#1d2421;
  font:20px/1.5 "PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif}
main{max-width:760px;margin:0 auto;padding:16px}
h1{font-size:26px;margin:0 0 8px}
.msg{border-radius:10px;padding:10px 14px;margin:8px 0;font-size:22px}
.info{background:#e6f4ec;color:#1a7f4b}.warn{background:#fff6e0;color:#7a5300}.error{background:#fdecea;color:#a1261b}
table{width:100%;border-collapse:collapse;background:#fff;border-radius:10px}
td,th{padding:8px 10px;border-bottom:1px solid #e7ecea;text-align:left}td.r,th.r{text-align:right}
.total{font-size:40px;font-weight:700;text-align:right;margin:12px 0}
.qr{background:#fff;width:300px;margin:8px auto;padding:8px}
.qr svg{width:100%;height:auto;display:block}
form{display:inline-block;width:48%}
button{width:100%;min-height:64px;font-size:24px;font-weight:600;border:0;border-radius:10px;
  background:#1a7f4b;color:#fff}
button.secondary{background:#e7ecea;color:#1d2421}
.hint{color:#5b6661;font-size:18px;text-align:center}
</style></head>
<body><main>
<h1>自助收银 {{ s.checkout }}</h1>
{% if not s.scanner_online %}<p class="msg error">扫码枪未连接，请联系店员</p>{% endif %}
{% if s.message %}<p class="msg {{ s.message_level }}" id="message">{{ s.message }}</p>{% endif %}
{% if s.receipt %}<p class="msg warn" id="receipt">{{ s.receipt }}</p>{% endif %}
{% if s["items"] %}
<table><tr><th>商品</th><th class="r">单价</th><th class="r">数量</th><th class="r">小计</th></tr>
{% for it in s["items"] %}
<tr><td>{{ it.name }}</td><td class="r">¥{{ "%.2f"|format(it.price) }}</td>
<td class="r">{{ it.qty }}</td><td class="r">¥{{ "%.2f"|format(it.price * it.qty) }}</td></tr>
{% endfor %}</table>
<p class="total" id="total">合计 ¥{{ "%.2f"|format(s.total) }}</p>
{% else %}<p class="hint">请扫描商品条码</p>{% endif %}
{% if s.payment %}
<p class="hint">请用手机扫码付款 ¥{{ "%.2f"|format(s.payment.amount) }}</p>
<div class="qr" id="qr">{{ qr | safe }}</div>
{% endif %}
<div>
{% if s["items"] and not s.payment %}
<form method="post" action="/pay"><button type="submit" id="pay">付款</button></form>
{% endif %}
{% if s["items"] %}
<form method="post" action="/clear">
<button type="submit" class="secondary" id="clear">清空</button></form>
{% endif %}
</div>
</main></body></html>
"""
)


@lru_cache(maxsize=8)
def qr_svg(url: str) -> str:
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    out = io.BytesIO()
    image.save(out)
    return out.getvalue().decode()


def render(state: dict[str, Any]) -> str:
    payment = state.get("payment")
    qr = qr_svg(payment["qr_url"]) if payment else ""
    return _PAGE.render(s=state, qr=qr, refresh=REFRESH_S)


def page_app(
    state: Callable[[], dict[str, Any]],
    pay: Callable[[], Awaitable[None]],
    clear: Callable[[], Awaitable[None]],
) -> web.Application:
    async def index(request: web.Request) -> web.Response:
        response = web.Response(text=render(state()), content_type="text/html", charset="utf-8")
        response.headers["Cache-Control"] = "no-store"
        return response

    async def state_json(request: web.Request) -> web.Response:
        return web.json_response(state())

    async def on_pay(request: web.Request) -> web.Response:
        await pay()
        raise web.HTTPSeeOther("/")

    async def on_clear(request: web.Request) -> web.Response:
        await clear()
        raise web.HTTPSeeOther("/")

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/state", state_json)
    app.router.add_post("/pay", on_pay)
    app.router.add_post("/clear", on_clear)
    return app
