"""Self-checkout payments over HTTP (issue 6).

Store side (the store's bearer token):
- `POST /api/v1/stores/{store}/payments` {checkout, cart, amount, items, ttl_seconds?}
  -> 201 {payment: {...}, qr_url}: the URL the checkout shows as a QR.
- `GET  /api/v1/stores/{store}/payments/{payment}` -> {payment} (the merchant may read too).
- `POST /api/v1/stores/{store}/payments/{payment}/cancel` -> {payment}; 409 if paid.

Customer and provider side (no token):
- `GET  /pay/{payment}`: what the QR opens. It stands in for the payment provider's
  cashier (WeChat Pay / Alipay): amount, items and, with `payments.demo`, a 确认支付
  button (`POST /pay/{payment}/confirm`) that marks it paid with no money moving.
- `POST /api/v1/payments/{payment}/notify`: the provider's asynchronous notification,
  HMAC-signed (cloud/payments/notify.py). A real provider's notify URL points here (or
  at an adapter that verifies the provider's own signature and calls the same confirm).
  Every call is recorded in `payment_notifications`, refused ones with why.

A pay page asked for a payment that does not exist is counted per client address
(`limits.pay_pages`, cloud/limits): past the limit the address gets 429 with Retry-After,
so payment ids cannot be trawled for.

Confirming marks the payment paid once and sends the store the signed `checkout.paid`.
"""

from __future__ import annotations

import logging
import math
import time

from aiohttp import web

from cloud.api.appkeys import CONFIG, DB
from cloud.api.auth import public, require
from cloud.api.bodies.base import read_body
from cloud.api.bodies.payments import PaymentRequest
from cloud.api.errors import ApiError
from cloud.bus import BUS
from cloud.limits.counters import Counter, Limiter, Refused
from cloud.limits.web import LIMITER, address_counter, client_bucket, retry_headers
from cloud.payments.notify import SIGNATURE_HEADER, TIMESTAMP_HEADER, NotifyError, verify
from cloud.payments.page import PAY_PAGE
from cloud.payments.service import Payment, PaymentRefused, Payments, to_fen

log = logging.getLogger("cloud.api.payments")

PAYMENTS = web.AppKey("payments", Payments)
MAX_NOTIFY_BYTES = 16 * 1024
STATUS_TEXT = {
    "paid": "支付成功，请回到收银台取小票",
    "cancelled": "该订单已取消",
    "expired": "付款已超时，请在收银台重新付款",
}


def add_routes(app: web.Application) -> None:
    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)
    app.router.add_post("/api/v1/stores/{store}/payments", create_payment)
    app.router.add_get("/api/v1/stores/{store}/payments/{payment}", get_payment)
    app.router.add_post("/api/v1/stores/{store}/payments/{payment}/cancel", cancel_payment)
    app.router.add_post("/api/v1/payments/{payment}/notify", notify)
    app.router.add_get("/pay/{payment}", pay_page)
    app.router.add_post("/pay/{payment}/confirm", demo_confirm)


async def _start(app: web.Application) -> None:
    app[PAYMENTS] = Payments(app[DB], app[CONFIG].payments, bus_of=lambda: app.get(BUS))
    if app.get(BUS) is not None:
        await app[PAYMENTS].resume()


async def _stop(app: web.Application) -> None:
    if PAYMENTS in app:
        await app[PAYMENTS].stop()


def _body_error(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


async def create_payment(request: web.Request) -> web.Response:
    store = request.match_info["store"]
    require(request, store, write=True)
    body = await read_body(
        request, PaymentRequest, code="bad_request", not_json="the body is not JSON"
    )
    cfg = request.app[CONFIG].payments
    amount_fen = body.amount_fen
    if amount_fen > round(cfg.max_amount * 100):
        raise _body_error(f"amount is over the hub's limit of {cfg.max_amount:.2f}")
    checkout, cart, ttl = body.checkout, body.cart, body.ttl_seconds
    items = [item.to_json() for item in body.items]
    payment = await request.app[PAYMENTS].create(
        store, checkout=checkout, cart=cart, amount_fen=amount_fen, items=items, ttl_s=ttl
    )
    return web.json_response(
        {"payment": payment.to_json(), "qr_url": _base_url(request) + f"/pay/{payment.id}"},
        status=201,
    )


def _base_url(request: web.Request) -> str:
    public_url = request.app[CONFIG].http.public_url
    return (public_url or f"{request.scheme}://{request.host}").rstrip("/")


async def _store_payment(request: web.Request, *, write: bool) -> Payment:
    store = request.match_info["store"]
    require(request, store, write=write)
    payment = await request.app[PAYMENTS].get(request.match_info["payment"])
    if payment is None or payment.store != store:
        raise ApiError(404, "not_found", "no such payment for this store")
    return payment


async def get_payment(request: web.Request) -> web.Response:
    payment = await _store_payment(request, write=False)
    return web.json_response({"payment": payment.to_json()})


async def cancel_payment(request: web.Request) -> web.Response:
    payment = await _store_payment(request, write=True)
    try:
        payment = await request.app[PAYMENTS].cancel(payment.id, payment.store)
    except PaymentRefused as e:
        raise ApiError(e.status, e.code, e.message) from None
    return web.json_response({"payment": payment.to_json()})


@public
async def notify(request: web.Request) -> web.Response:
    payments = request.app[PAYMENTS]
    cfg = request.app[CONFIG].payments
    payment_id = request.match_info["payment"]
    body = await request.content.read(MAX_NOTIFY_BYTES + 1)
    peer = request.remote or ""

    async def refuse(status: int, code: str, message: str) -> web.Response:
        await payments.record_notification(payment_id, ok=False, outcome=code, peer=peer, body=body)
        log.warning("payment notification refused", extra={"payment": payment_id, "why": code})
        raise ApiError(status, code, message)

    if len(body) > MAX_NOTIFY_BYTES:
        return await refuse(413, "too_large", "the notification is too large")
    try:
        note = verify(
            cfg.notify_secret,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            body,
            now=time.time(),
            skew=cfg.notify_skew_seconds,
        )
    except NotifyError as e:
        status = 503 if e.code == "not_configured" else 401 if "sign" in e.code else 400
        return await refuse(status, e.code, e.message)
    if note.payment != payment_id:
        return await refuse(400, "bad_body", "the body names another payment")
    if note.status != "SUCCESS":
        # Failed or closed trades need nothing from the hub: the payment stays pending
        # and expires. Recorded, and acknowledged so the provider stops resending.
        await payments.record_notification(
            payment_id, ok=True, outcome=f"status_{note.status[:20]}", peer=peer, body=body
        )
        return web.json_response({"code": "SUCCESS"})
    try:
        fen = to_fen(note.amount)
        _, first = await payments.confirm(
            payment_id, amount_fen=fen, method=note.method, ref=note.transaction_id or None
        )
    except ValueError as e:
        return await refuse(400, "bad_body", str(e))
    except PaymentRefused as e:
        return await refuse(e.status, e.code, e.message)
    await payments.record_notification(
        payment_id, ok=True, outcome="paid" if first else "already_paid", peer=peer, body=body
    )
    return web.json_response({"code": "SUCCESS"})


@public
async def pay_page(request: web.Request) -> web.Response:
    counter = _pay_counter(request)
    paused = await request.app[LIMITER].paused([counter])
    if paused is not None:
        return _pay_paused(request, paused)
    payment = await request.app[PAYMENTS].get(request.match_info["payment"])
    if payment is None:
        return await _no_such_payment(request, counter)
    return _page(request, "扫码付款", payment)


def _pay_counter(request: web.Request) -> Counter:
    return address_counter(request, "pay.page", request.app[CONFIG].limits.pay_pages)


async def _no_such_payment(request: web.Request, counter: Counter) -> web.Response:
    counted = await request.app[LIMITER].reserve([counter])  # counted before it is answered
    if isinstance(counted, Refused):
        return _pay_paused(request, counted)
    return _page(request, "付款", None, status=404, message="没有这笔付款，请在收银台重新扫码")


def _pay_paused(request: web.Request, paused: Refused) -> web.Response:
    limiter: Limiter = request.app[LIMITER]
    log.warning("pay page paused: unknown payments", extra={"client": client_bucket(request)})
    minutes = math.ceil(paused.retry_after(limiter.now()) / 60)
    message = f"请求过多，请 {minutes} 分钟后再试"
    response = _page(request, "付款", None, status=429, message=message)
    response.headers.update(retry_headers(limiter, paused))
    return response


@public
async def demo_confirm(request: web.Request) -> web.Response:
    if not request.app[CONFIG].payments.demo:
        raise ApiError(404, "not_found", "the demo payment page is off on this hub")
    payments = request.app[PAYMENTS]
    counter = _pay_counter(request)
    paused = await request.app[LIMITER].paused([counter])
    if paused is not None:
        return _pay_paused(request, paused)
    payment = await payments.get(request.match_info["payment"])
    if payment is None:
        return await _no_such_payment(request, counter)
    try:
        payment, _ = await payments.confirm(
            payment.id, amount_fen=payment.amount_fen, method="demo", ref=None
        )
    except PaymentRefused as e:
        refused = await payments.get(payment.id)
        return _page(request, "扫码付款", refused, status=e.status)
    return _page(request, "扫码付款", payment)


def _page(
    request: web.Request,
    title: str,
    payment: Payment | None,
    *,
    status: int = 200,
    message: str = "",
) -> web.Response:
    if payment is None:
        html = f"<!doctype html><meta charset=utf-8><title>{title}</title><p>{message}</p>"
    else:
        html = PAY_PAGE.render(
            title=title,
            payment=payment.to_json() | {"amount": payment.amount},
            status_text=STATUS_TEXT.get(payment.status, payment.status),
            demo=request.app[CONFIG].payments.demo,
        )
    response = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
