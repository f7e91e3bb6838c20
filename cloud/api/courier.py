"""The courier's pickup pass: a QR the store's door scanner accepts offline.

`GET /api/v1/stores/{store}/orders/{order_id}/pickup-pass[?courier=ID]` (the store's or a
merchant's token) -> `{"pass", "qr_svg", "expires_at", "order", "pickup_code", "day_seq",
"link"}`: a pass (CONTRACTS section 2) of scope `pickup` naming that one order, valid
`courier.pass_ttl_seconds` (default 2 h), any door of the store. 404 for an unknown
order, 409 for one that is no longer pending.

`GET /c/{store}/{order_id}?sig=SIG` is the page a platform hands the rider: no token, the
link itself is the credential. SIG is an HMAC-SHA256 of store and order under
`courier.link_secret` (or a key derived from the signing key), so only the hub makes
links, and a link opens only its own order. The page shows 取货码, the order's number of
the day, a fresh pass as a large QR code and the pickup code digits. A bad or missing
sig is 403 and says nothing about the order; bad sigs are counted per client address
(`limits.courier_links`, cloud/limits), and past the limit the address gets 429 with
Retry-After, good link or not, until the window ends.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import html
import logging
import math
import time
from typing import Any
from urllib.parse import quote

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud import consttime, signing
from cloud.api.appkeys import CONFIG
from cloud.api.auth import public, require
from cloud.api.errors import ApiError
from cloud.api.orders import order_service
from cloud.config import HubConfig
from cloud.db.times import utc_text
from cloud.limits.counters import Limiter, Refused
from cloud.limits.web import LIMITER, address_counter, client_bucket, retry_headers
from cloud.web.pass_qr import pass_svg

log = logging.getLogger("cloud.api.courier")

PASS_PATH = "/api/v1/stores/{store}/orders/{order_id}/pickup-pass"
PAGE_PATH = "/c/{store}/{order_id}"
SIG_HEX = 32  # 128 bits of HMAC-SHA256 are plenty for a link and keep it short


class CourierKeys:
    def __init__(self, key: Ed25519PrivateKey, kid: str, link_secret: bytes, ttl: int) -> None:
        self.key = key
        self.kid = kid
        self.link_secret = link_secret
        self.ttl = ttl

    def sig(self, store: str, order_id: str) -> str:
        message = f"courier\n{store}\n{order_id}".encode()
        return hmac.new(self.link_secret, message, hashlib.sha256).hexdigest()[:SIG_HEX]

    def path(self, store: str, order_id: str) -> str:
        """The courier page's path, signed: what the platform gives the rider."""
        sig = self.sig(store, order_id)
        return f"/c/{quote(store, safe='')}/{quote(order_id, safe='')}?sig={sig}"

    def mint(self, store: str, order_id: str, sub: str, now: float) -> tuple[str, float]:
        token = signing.mint_pass(
            self.key,
            self.kid,
            store=store,
            scope="pickup",
            sub=sub,
            orders=[order_id],
            ttl=self.ttl,
            now=now,
        )
        return token, int(now) + self.ttl


async def courier_link(app: web.Application, store: str, order_id: str) -> str:
    """The signed courier page path for an order (prefix it with the hub's public URL)."""
    return (await courier_keys(app)).path(store, order_id)


def derived_link_secret(key: Ed25519PrivateKey) -> bytes:
    raw = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return hmac.new(raw, b"shopgate courier links v1", hashlib.sha256).digest()


def add_routes(app: web.Application) -> None:
    app[COURIER_KEYS] = _Lazy()
    app.router.add_get(PASS_PATH, get_pickup_pass)
    app.router.add_get(PAGE_PATH, courier_page)


class _Lazy:
    """The keys, read on first use: an application that never mints a courier pass
    (tests of other routes) needs no key file."""

    def __init__(self) -> None:
        self.keys: CourierKeys | None = None
        self._lock = asyncio.Lock()

    async def get(self, app: web.Application) -> CourierKeys:
        async with self._lock:
            if self.keys is None:
                self.keys = await asyncio.to_thread(load_keys, app[CONFIG])
            return self.keys


def load_keys(cfg: HubConfig) -> CourierKeys:
    key, kid = signing.load_private_key(cfg.signing.key_file, cfg.signing.kid)
    secret = cfg.courier.link_secret.encode() or derived_link_secret(key)
    return CourierKeys(key, kid, secret, cfg.courier.pass_ttl_seconds)


COURIER_KEYS = web.AppKey("courier_keys", _Lazy)


async def courier_keys(app: web.Application) -> CourierKeys:
    return await app[COURIER_KEYS].get(app)


async def _pending_order(app: web.Application, store: str, order_id: str) -> dict[str, Any]:
    order = await order_service(app).get(store, order_id)
    if order is None:
        raise ApiError(404, "unknown_order", f"store {store!r} has no order {order_id!r}")
    shown = order.to_agent()
    if order.status != "pending":
        code = "already_picked_up" if order.status == "picked_up" else order.status
        raise ApiError(409, code, f"order {order_id!r} is {order.status}, not pending")
    return shown


async def get_pickup_pass(request: web.Request) -> web.Response:
    store = request.match_info["store"]
    order_id = request.match_info["order_id"]
    require(request, store, write=False)
    order = await _pending_order(request.app, store, order_id)
    courier = request.query.get("courier", "").strip()[:100] or f"courier:{order['platform']}"
    keys = await courier_keys(request.app)
    token, exp = keys.mint(store, order_id, courier, time.time())
    label = f"取货码 {order.get('pickup_code') or order_id}"
    return web.json_response(
        {
            "pass": token,
            "qr_svg": pass_svg(token, label=label),
            "expires_at": utc_text_epoch(exp),
            "order": order_id,
            "pickup_code": order.get("pickup_code"),
            "day_seq": order.get("day_seq"),
            "link": keys.path(store, order_id),
        },
        headers={"Cache-Control": "no-store"},
    )


@public
async def courier_page(request: web.Request) -> web.Response:
    store = request.match_info["store"]
    order_id = request.match_info["order_id"]
    keys = await courier_keys(request.app)
    limiter = request.app[LIMITER]
    counter = address_counter(request, "courier.link", request.app[CONFIG].limits.courier_links)
    paused = await limiter.paused([counter])
    if paused is not None:
        return _paused_page(request, limiter, paused)
    sig = request.query.get("sig", "")
    if not consttime.equal(sig, keys.sig(store, order_id)):
        counted = await limiter.reserve([counter])  # counted before it is answered
        if isinstance(counted, Refused):
            return _paused_page(request, limiter, counted)
        return _page("链接无效", "<p class=msg>这个取货链接无效，请在骑手App中重新打开。</p>", 403)
    try:
        order = await _pending_order(request.app, store, order_id)
    except ApiError as e:
        text = {
            "unknown_order": "找不到这个订单。",
            "already_picked_up": "这个订单已经取货。",
            "cancelled": "这个订单已取消。",
        }.get(e.code, "这个订单现在不能取货。")
        return _page("无法取货", f"<p class=msg>{html.escape(text)}</p>", e.status)
    platform = order.get("platform") or "courier"
    token, _ = keys.mint(store, order_id, f"courier:{platform}", time.time())
    code = str(order.get("pickup_code") or "")
    day = order.get("day_seq")
    hours = keys.ttl / 3600
    body = f"""
<p class=day>{"#" + html.escape(str(day)) if day is not None else ""}</p>
<div class=qr>{pass_svg(token, label="取货二维码")}</div>
<p class=hint>在门口扫码器出示二维码，或在键盘输入取货码</p>
<p class=code aria-label="取货码">{html.escape(code)}</p>
<p class=hint>订单 {html.escape(order.get("platform_order_id") or order_id)}
 · 二维码 {hours:g} 小时内有效</p>"""
    return _page("取货码", body, 200)


_CSS = """
body{margin:0;font-family:system-ui,-apple-system,"PingFang SC","Noto Sans CJK SC",sans-serif;
background:#f5f5f5;color:#111;text-align:center}
main{max-width:480px;margin:0 auto;padding:16px}
h1{font-size:1.6rem;margin:8px 0}
.day{font-size:2.4rem;font-weight:700;margin:4px 0}
.qr{background:#fff;padding:8px;border-radius:8px}
.qr svg{width:100%;max-width:440px;height:auto;display:block;margin:0 auto}
.code{font-size:2.6rem;letter-spacing:.3em;font-weight:700;font-variant-numeric:tabular-nums;
margin:8px 0}
.hint,.msg{color:#555;font-size:1rem}
"""
_CSP = (
    "default-src 'none'; style-src 'sha256-"
    + base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()
    + "'; img-src data:; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)


def _page(title: str, body: str, status: int) -> web.Response:
    document = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"""
    response = web.Response(text=document, status=status, content_type="text/html")
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _paused_page(request: web.Request, limiter: Limiter, paused: Refused) -> web.Response:
    log.warning("courier page paused: too many bad links", extra={"client": client_bucket(request)})
    minutes = math.ceil(paused.retry_after(limiter.now()) / 60)
    text = f"<p class=msg>无效链接过多，请 {minutes} 分钟后再试。</p>"
    response = _page("请稍后再试", text, 429)
    response.headers.update(retry_headers(limiter, paused))
    return response


def utc_text_epoch(epoch: float) -> str:
    return utc_text(dt.datetime.fromtimestamp(epoch, dt.UTC))
