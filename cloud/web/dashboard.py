"""The owner's dashboard, `/dashboard`: a merchant's stores and their day, on a phone.

Login exchanges the merchant's API token (hub.yaml merchants[].token) for a signed
session cookie (dashboard_session.py: HttpOnly, SameSite=Strict); the token itself is
never stored, echoed or logged. Wrong tokens are counted per client address
(`limits.dashboard_login`, cloud/limits) and kept in `rejections`; past the limit the
address gets 429, right token or not, until the window ends. A session sees exactly the
stores the merchant is linked to in the database at that moment; any other store is 403,
whether it exists or not.

`GET /dashboard/stores/{store}` is one server-rendered page, no script: online or not,
doors and devices, today's orders per platform, pending pickups with their age, sales
and gross profit of the last days (an inline SVG chart), top sellers, low stock, the
door's recent access log and failed platform/ERP pushes, with 一键恢复库存 on a picked-up
order when the stock ledger is there. It reloads itself every minute. Panels read from
dashboard_data.py (this hub's tables) and dashboard_sources.py (parts that may be
missing); a panel that cannot be read says so and the rest of the page still shows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import secrets
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote

from aiohttp import web

from cloud import consttime, signing
from cloud.api.appkeys import CONFIG, DB
from cloud.api.auth import public
from cloud.bus import BUS
from cloud.db.events import record_rejection
from cloud.db.principals import find_principal
from cloud.limits.counters import Limiter, Refused
from cloud.limits.web import LIMITER, address_counter, client_bucket, retry_headers
from cloud.web import dashboard_data as data
from cloud.web import dashboard_sources as sources
from cloud.web.dashboard_session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_TTL_S,
    SessionError,
    SessionKeys,
    token_tag,
)
from cloud.web.dashboard_view import DashboardView
from cloud.web.form_token import derive_key
from cloud.web.svg_chart import Series, bar_chart

log = logging.getLogger("cloud.web.dashboard")

ROOT = "/dashboard"
LOGIN = "/dashboard/login"
LOGOUT = "/dashboard/logout"
STORE = "/dashboard/stores/{store}"
RESTORE = "/dashboard/stores/{store}/orders/{order_id}/restore-stock"
CHART_DAYS = 7
TOP_DAYS = 7
MAX_FORM_BYTES = 4096
MAX_TOKEN_CHARS = 512
REFRESH_S = 60
# Messages shown after a form post (Post/Redirect/Get); the query names one of these.
NOTICES = {
    "restored": "已恢复库存",
    "restore_failed": "恢复库存失败：订单未取货、已恢复过，或没有出库记录",
}

T = TypeVar("T")


class _State:
    def __init__(self) -> None:
        self.view = DashboardView()
        self._keys: SessionKeys | None = None
        self._lock = asyncio.Lock()

    async def keys(self, app: web.Application) -> SessionKeys:
        # Read on first use: an application that never serves the dashboard (tests of
        # other routes) needs no key file.
        async with self._lock:
            if self._keys is None:
                cfg = app[CONFIG]
                key, _ = await asyncio.to_thread(
                    signing.load_private_key, cfg.signing.key_file, cfg.signing.kid
                )
                self._keys = SessionKeys(derive_key(key, "dashboard-session"))
            return self._keys


DASHBOARD = web.AppKey("dashboard", _State)


def add_routes(app: web.Application) -> None:
    app[DASHBOARD] = _State()
    app.on_startup.append(_load)
    app.router.add_get(ROOT, home)
    app.router.add_get(LOGIN, login_form)
    app.router.add_post(LOGIN, login)
    app.router.add_post(LOGOUT, logout)
    app.router.add_get(STORE, store_page)
    app.router.add_post(RESTORE, restore_stock)


async def _load(app: web.Application) -> None:
    await asyncio.to_thread(app[DASHBOARD].view.load)


@dataclass(frozen=True, slots=True)
class Owner:
    merchant: data.Merchant
    csrf: str


async def _owner(request: web.Request) -> Owner | None:
    """The merchant whose live session this request carries, or None."""
    state = request.app[DASHBOARD]
    keys = await state.keys(request.app)
    try:
        session = keys.read(request.cookies.get(SESSION_COOKIE))
    except SessionError:
        return None
    merchant = await data.merchant(request.app[DB], session.merchant)
    if merchant is None or not consttime.equal(token_tag(merchant.token_hash), session.token_tag):
        return None  # removed, or its token changed since the login
    return Owner(merchant, keys.csrf(session.nonce))


def _to_login() -> NoReturn:
    raise web.HTTPSeeOther(LOGIN)


def _store_path(store: str) -> str:
    return f"{ROOT}/stores/{quote(store, safe='')}"


def _secure(request: web.Request) -> bool:
    return request.secure or request.app[CONFIG].http.public_url.startswith("https://")


# -- login -------------------------------------------------------------------------------


@public
async def login_form(request: web.Request) -> web.StreamResponse:
    if await _owner(request) is not None:
        raise web.HTTPSeeOther(ROOT)
    return await _login_page(request)


async def _login_page(
    request: web.Request, *, error: str | None = None, status: int = 200
) -> web.Response:
    state = request.app[DASHBOARD]
    keys = await state.keys(request.app)
    nonce = secrets.token_urlsafe(16)
    response = state.view.render(
        "dashboard_login.html", status=status, csrf=keys.csrf(nonce), error=error, action=LOGIN
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=3600,
        path=ROOT,
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
    )
    return response


@public
async def login(request: web.Request) -> web.StreamResponse:
    if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
        return await _login_page(request, error="内容过长", status=413)
    try:
        form = await request.post()
    except ValueError:
        return await _login_page(request, error="无法读取表单，请重试", status=400)
    keys = await request.app[DASHBOARD].keys(request.app)
    if not keys.csrf_ok(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
        # A stale page, cookies blocked, or a post from another site: ask again.
        return await _login_page(request, error="页面已失效，请重新登录", status=400)
    token = str(form.get("token", "")).strip()
    if not token or len(token) > MAX_TOKEN_CHARS:
        return await _login_page(request, error="请输入商户令牌", status=400)
    limiter = request.app[LIMITER]
    counter = address_counter(
        request, "dashboard.login", request.app[CONFIG].limits.dashboard_login
    )
    paused = await limiter.paused([counter])
    if paused is not None:
        return await _login_paused(request, limiter, paused)
    principal = await find_principal(request.app[DB], token)
    if principal is None or principal.kind != "merchant":
        # Counted before it is answered: past the limit, no more answers to guesses.
        counted = await limiter.reserve([counter])
        if isinstance(counted, Refused):
            return await _login_paused(request, limiter, counted)
        caller = principal.kind if principal else "unknown"
        client = client_bucket(request)
        log.warning("dashboard login refused", extra={"client": client, "caller": caller})
        reason = f"dashboard login refused ({caller} token) from {client}"
        await record_rejection(request.app[DB], "", LOGIN, 401, reason, 0)
        error = (
            "这是门店令牌，请使用商户令牌登录"
            if principal is not None
            else "令牌不正确，请检查后重试"
        )
        return await _login_page(request, error=error, status=401)
    merchant = await data.merchant(request.app[DB], principal.id)
    if merchant is None:  # removed between the two reads
        return await _login_page(request, error="令牌不正确，请检查后重试", status=401)
    log.info("dashboard login", extra={"merchant": merchant.id, "client": client_bucket(request)})
    response = web.HTTPSeeOther(ROOT)
    response.set_cookie(
        SESSION_COOKIE,
        keys.mint(merchant.id, merchant.token_hash),
        max_age=SESSION_TTL_S,
        path=ROOT,
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
    )
    response.del_cookie(LOGIN_COOKIE, path=ROOT)
    raise response


async def _login_paused(request: web.Request, limiter: Limiter, paused: Refused) -> web.Response:
    log.warning("dashboard login paused", extra={"client": client_bucket(request)})
    minutes = math.ceil(paused.retry_after(limiter.now()) / 60)
    error = f"尝试次数过多，请 {minutes} 分钟后再试"
    response = await _login_page(request, error=error, status=429)
    response.headers.update(retry_headers(limiter, paused))
    return response


@public
async def logout(request: web.Request) -> web.StreamResponse:
    owner = await _owner(request)
    if owner is not None:
        form = await request.post()
        if not consttime.equal(str(form.get("csrf", "")), owner.csrf):
            raise web.HTTPSeeOther(ROOT)
    response = web.HTTPSeeOther(LOGIN)
    response.del_cookie(SESSION_COOKIE, path=ROOT)
    raise response


# -- pages -------------------------------------------------------------------------------


@public
async def home(request: web.Request) -> web.StreamResponse:
    owner = await _owner(request)
    if owner is None:
        _to_login()
    ids = owner.merchant.stores
    if len(ids) == 1:
        raise web.HTTPSeeOther(_store_path(ids[0]))
    db = request.app[DB]
    names = await data.store_names(db, ids)
    bus = request.app.get(BUS)
    day = data.today()
    rows = []
    for store in ids:
        live = bus.store_online(store) if bus is not None else None
        presence = await data.presence(db, store, live)
        orders = await data.orders_today(db, store, day)
        pending = sum(p.pending for p in orders)
        rows.append(
            {
                "id": store,
                "name": names.get(store, store),
                "path": _store_path(store),
                "online": presence.online,
                "orders": sum(p.total for p in orders),
                "pending": pending,
            }
        )
    return request.app[DASHBOARD].view.render(
        "dashboard_stores.html",
        merchant=owner.merchant.id,
        stores=rows,
        csrf=owner.csrf,
        logout=LOGOUT,
        refresh=REFRESH_S,
    )


@public
async def store_page(request: web.Request) -> web.StreamResponse:
    owner = await _owner(request)
    if owner is None:
        _to_login()
    store = request.match_info["store"]
    view = request.app[DASHBOARD].view
    if store not in owner.merchant.stores:
        return _forbidden(request, owner, store)
    context = await _store_context(request.app, store, owner)
    notice = NOTICES.get(request.query.get("done", ""))
    units = request.query.get("n", "")
    if notice and request.query.get("done") == "restored" and units.isdigit() and len(units) < 7:
        notice = f"{notice} {int(units)} 件"
    return view.render(
        "dashboard_store.html",
        **context,
        notice=notice,
        notice_ok=request.query.get("done") == "restored",
        csrf=owner.csrf,
        logout=LOGOUT,
        refresh=REFRESH_S,
        many_stores=len(owner.merchant.stores) > 1,
        home=ROOT,
    )


def _forbidden(request: web.Request, owner: Owner, store: str) -> web.Response:
    log.warning(
        "dashboard: store not the merchant's",
        extra={"merchant": owner.merchant.id, "store": store[:64], "peer": request.remote},
    )
    return request.app[DASHBOARD].view.render(
        "dashboard_message.html",
        status=403,
        title="无权查看",
        message="此门店不属于您的账户。",
        back=ROOT,
        csrf=owner.csrf,
        logout=LOGOUT,
    )


async def _panel(name: str, store: str, read: Awaitable[T]) -> T | None:
    """One panel's data; None (the panel says it cannot be read) when reading fails."""
    try:
        return await read
    except Exception:
        log.exception("dashboard panel %s failed", name, extra={"store": store})
        return None


async def _store_context(app: web.Application, store: str, owner: Owner) -> dict[str, Any]:
    db = app[DB]
    now = dt.datetime.now(dt.UTC)
    day = data.today(now)
    days = [day - dt.timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]
    bus = app.get(BUS)
    live = bus.store_online(store) if bus is not None else None
    retained = getattr(bus, "store_state", lambda _s: None)(store) if bus is not None else None
    names = await data.store_names(db, [store])

    presence = await _panel("presence", store, data.presence(db, store, live))
    state = await _panel("state", store, data.store_state(db, store, retained))
    today_orders = await _panel("orders", store, data.orders_today(db, store, day))
    pending = await _panel("pending", store, data.pending_pickups(db, store, now))
    sales = await _panel("sales", store, data.sales_since(db, store, days[0]))
    costs = await _panel("costs", store, sources.costs(app, store))
    low = await _panel("low_stock", store, sources.low_stock(app, store))
    access = await _panel("access", store, data.access_log(db, store))
    platform_failures = await _panel("failures", store, data.platform_failures(db, store))
    push_failures = await _panel("stock_push", store, sources.stock_push_failures(app, store))
    erp_failures = await _panel("erp", store, sources.erp_failures(app, store))
    picked = await _panel(
        "picked_up", store, data.picked_up_recently(db, store, day - dt.timedelta(days=1))
    )

    daily = data.daily_sales(sales, days, costs) if sales is not None else None
    top_since = day - dt.timedelta(days=TOP_DAYS - 1)
    top = data.top_sellers(s for s in sales if s.day >= top_since) if sales is not None else None
    chart = None
    if daily is not None:
        chart = bar_chart(
            [f"{d.day.month}/{d.day.day}" for d in daily],
            [
                Series("销售额", "#1a7f4b", [d.revenue for d in daily]),
                Series("毛利", "#2f6db5", [d.profit for d in daily]),
            ],
            fmt=data.money,
            title=f"近 {CHART_DAYS} 天销售额与毛利",
            chart_id="sales-chart",
        )
    failures = None
    if platform_failures is not None:
        failures = [*platform_failures, *(push_failures or []), *(erp_failures or [])]
        failures.sort(key=lambda f: f.at, reverse=True)
    today_total = None
    if today_orders is not None:
        today_total = {
            "total": sum(p.total for p in today_orders),
            "pending": sum(p.pending for p in today_orders),
            "picked_up": sum(p.picked_up for p in today_orders),
            "cancelled": sum(p.cancelled for p in today_orders),
            "amount": sum(p.amount for p in today_orders),
        }
    today_sales = daily[-1] if daily else None
    return {
        "store": store,
        "store_name": names.get(store, store),
        "presence": presence,
        "state": state,
        "today_orders": today_orders,
        "today_total": today_total,
        "today_sales": today_sales,
        "pending": pending,
        "daily": daily,
        "profit_known": daily is not None and any(d.profit is not None for d in daily),
        "uncosted": sum(d.uncosted for d in daily) if daily else 0,
        "chart": chart,
        "top": top,
        "low": low,
        "access": access,
        "failures": failures,
        "erp_known": erp_failures is not None,
        "picked": picked,
        "can_restore": sources.can_restore(app),
        "restore_path": lambda order_id: (
            f"{_store_path(store)}/orders/{quote(order_id, safe='')}/restore-stock"
        ),
    }


# -- actions -----------------------------------------------------------------------------


@public
async def restore_stock(request: web.Request) -> web.StreamResponse:
    owner = await _owner(request)
    if owner is None:
        _to_login()
    store = request.match_info["store"]
    order_id = request.match_info["order_id"]
    if store not in owner.merchant.stores:
        return _forbidden(request, owner, store)
    if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
        raise web.HTTPSeeOther(f"{_store_path(store)}?done=restore_failed")
    form = await request.post()
    if not consttime.equal(str(form.get("csrf", "")), owner.csrf):
        log.warning("dashboard: restore without a valid form token", extra={"store": store})
        raise web.HTTPSeeOther(f"{_store_path(store)}?done=restore_failed")
    try:
        units = await sources.restore_stock(
            request.app, store, order_id, by=f"merchant:{owner.merchant.id}"
        )
    except sources.RestoreError as e:
        log.warning("dashboard: restore refused: %s", e, extra={"store": store, "order": order_id})
        raise web.HTTPSeeOther(f"{_store_path(store)}?done=restore_failed") from None
    log.info(
        "dashboard: stock restored",
        extra={"store": store, "order": order_id, "units": units, "merchant": owner.merchant.id},
    )
    raise web.HTTPSeeOther(f"{_store_path(store)}?done=restored&n={units}")
