"""What the owner dashboard shows, read from the hub's database (SQLite or PostgreSQL).

Every query is SQLAlchemy Core on tables both databases share; grouping by day happens
here in Python, in China time (UTC+8, no summer time), since the two databases spell
date arithmetic differently and a store's day is a few hundred rows at most.

Money is counted in fen (integers) throughout: platform orders store fen, the agents'
`sale.completed` events carry yuan with 2 decimals, converted once on reading.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import and_, func, or_, select

from cloud.db.engine import Database
from cloud.db.tables import (
    events,
    merchant_stores,
    merchants,
    orders,
    platform_calls,
    store_status_log,
    stores,
)
from cloud.db.times import utc_text

log = logging.getLogger("cloud.web.dashboard")

CHINA = dt.timezone(dt.timedelta(hours=8), "CST")
PLATFORM_NAMES = {
    "meituan": "美团",
    "eleme": "饿了么",
    "jddj": "京东到家",
    "douyin": "抖音",
    "local": "本店",
}
CHANNEL_NAMES = {"checkout": "自助收银", "vend": "售货机", "locker": "取货柜"}
ACCESS_LIMIT = 20
STATE_EVENTS_SCAN = 500  # recent door.*/device.* events read to rebuild doors and devices
PENDING_LIMIT = 50
FAILURE_LIMIT = 30


def day_of(ts: str) -> dt.date:
    """The China-time day of a stored UTC time text ("2025-01-02T03:04:05.000006Z")."""
    when = dt.datetime.fromisoformat(ts.replace("Z", "+00:00").replace("z", "+00:00"))
    return when.astimezone(CHINA).date()


def day_start(day: dt.date) -> str:
    """The stored UTC time text at which a China-time day begins."""
    return utc_text(dt.datetime.combine(day, dt.time(), CHINA))


def today(now: dt.datetime | None = None) -> dt.date:
    return (now or dt.datetime.now(dt.UTC)).astimezone(CHINA).date()


def yuan_to_fen(value: Any) -> int | None:
    """3.5 / "3.50" -> 350; None for anything that is not an amount."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def money(fen: int | None) -> str:
    """1250 -> "¥12.50"; -300 -> "-¥3.00"; None -> "—"."""
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


# -- who may see which store -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Merchant:
    id: str
    token_hash: str
    stores: tuple[str, ...]


async def merchant(db: Database, merchant_id: str) -> Merchant | None:
    async with db.read() as conn:
        token_hash = (
            await conn.execute(select(merchants.c.token_hash).where(merchants.c.id == merchant_id))
        ).scalar_one_or_none()
        if token_hash is None:
            return None
        linked = (
            await conn.execute(
                select(merchant_stores.c.store_id)
                .where(merchant_stores.c.merchant_id == merchant_id)
                .order_by(merchant_stores.c.store_id)
            )
        ).scalars()
        return Merchant(merchant_id, token_hash, tuple(linked))


async def store_names(db: Database, ids: Sequence[str]) -> dict[str, str]:
    if not ids:
        return {}
    query = select(stores.c.id, stores.c.name).where(stores.c.id.in_(list(ids)))
    async with db.read() as conn:
        return {r.id: r.name or r.id for r in await conn.execute(query)}


# -- presence, doors and devices ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Presence:
    online: bool | None  # None: never heard of
    since: str | None  # when the hub last logged a status change of the store


async def presence(db: Database, store: str, live: bool | None) -> Presence:
    """`live` is the bus's answer (the retained status); without one, the status log."""
    query = (
        select(store_status_log.c.at, store_status_log.c.online)
        .where(store_status_log.c.store_id == store)
        .order_by(store_status_log.c.id.desc())
        .limit(1)
    )
    async with db.read() as conn:
        row = (await conn.execute(query)).first()
    if live is None and row is not None:
        live = bool(row.online)
    since = row.at if row is not None and (live is None or bool(row.online) == live) else None
    return Presence(live, since)


@dataclass
class StoreState:
    doors: dict[str, str] = field(default_factory=dict)  # locked | open | held_open
    devices: dict[str, str] = field(default_factory=dict)  # online | error
    business: str | None = None
    outbox_depth: int | None = None
    source: str = "none"  # state (retained MQTT state) | events | none


_DOOR_EVENTS = {
    "door.opened": "open",
    "door.forced": "open",
    "door.held_open": "held_open",
    "door.closed": "locked",
    "door.locked": "locked",
}


async def store_state(db: Database, store: str, retained: Mapping[str, Any] | None) -> StoreState:
    """Doors and devices: the agent's retained `state` when the bus has it, else rebuilt
    from the latest door.* and device.* events the agent posted."""
    if isinstance(retained, Mapping):
        doors = retained.get("doors")
        devices = retained.get("devices")
        depth = retained.get("outbox_depth")
        return StoreState(
            doors={str(k): str(v) for k, v in doors.items()} if isinstance(doors, dict) else {},
            devices=(
                {str(k): str(v) for k, v in devices.items()} if isinstance(devices, dict) else {}
            ),
            business=str(retained["business"]) if "business" in retained else None,
            outbox_depth=depth if isinstance(depth, int) else None,
            source="state",
        )
    query = (
        select(events.c.type, events.c.envelope)
        .where(
            events.c.store_id == store,
            or_(events.c.type.like("door.%"), events.c.type.like("device.%")),
        )
        .order_by(events.c.seq.desc())
        .limit(STATE_EVENTS_SCAN)
    )
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    state = StoreState(source="events" if rows else "none")
    for row in rows:  # newest first: the first word on each door or device stands
        data = _data(row.envelope)
        if row.type in _DOOR_EVENTS:
            door = data.get("door")
            if isinstance(door, str):
                state.doors.setdefault(door, _DOOR_EVENTS[row.type])
        elif row.type in ("device.online", "device.offline"):
            device = data.get("device")
            if isinstance(device, str):
                state.devices.setdefault(
                    device, "online" if row.type.endswith("online") else "error"
                )
    return state


# -- orders ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlatformDay:
    platform: str
    name: str
    total: int
    pending: int
    picked_up: int
    cancelled: int
    amount: int  # fen, orders not cancelled


async def orders_today(db: Database, store: str, day: dt.date) -> list[PlatformDay]:
    """Today's orders (by creation time) per platform, with how each stands."""
    query = (
        select(orders.c.platform, orders.c.status, func.count(), func.sum(orders.c.total))
        .where(orders.c.store_id == store, orders.c.created_at >= day_start(day))
        .where(orders.c.created_at < day_start(day + dt.timedelta(days=1)))
        .group_by(orders.c.platform, orders.c.status)
    )
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    per: dict[str, dict[str, int]] = {}
    for platform, status, count, amount in rows:
        slot = per.setdefault(platform, {"pending": 0, "picked_up": 0, "cancelled": 0, "amount": 0})
        slot[status] = slot.get(status, 0) + int(count)
        if status != "cancelled":
            slot["amount"] += int(amount or 0)
    out = [
        PlatformDay(
            platform=p,
            name=PLATFORM_NAMES.get(p, p),
            total=s["pending"] + s["picked_up"] + s["cancelled"],
            pending=s["pending"],
            picked_up=s["picked_up"],
            cancelled=s["cancelled"],
            amount=s["amount"],
        )
        for p, s in per.items()
    ]
    return sorted(out, key=lambda d: (-d.total, d.platform))


@dataclass(frozen=True, slots=True)
class PendingPickup:
    id: str
    platform: str
    platform_name: str
    day_seq: int
    pickup_code: str
    created_at: str
    age_minutes: int
    items: str


async def pending_pickups(db: Database, store: str, now: dt.datetime) -> list[PendingPickup]:
    query = (
        select(orders)
        .where(orders.c.store_id == store, orders.c.status == "pending")
        .order_by(orders.c.created_at, orders.c.id)
        .limit(PENDING_LIMIT)
    )
    async with db.read() as conn:
        rows = (await conn.execute(query)).mappings().all()
    out = []
    for r in rows:
        created = _parse_time(r["created_at"])
        age = int((now - created).total_seconds() // 60) if created else 0
        out.append(
            PendingPickup(
                id=r["id"],
                platform=r["platform"],
                platform_name=PLATFORM_NAMES.get(r["platform"], r["platform"]),
                day_seq=r["day_seq"],
                pickup_code=r["pickup_code"],
                created_at=r["created_at"],
                age_minutes=max(0, age),
                items=_items_text(_json_list(r["items"])),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class PickedUp:
    id: str
    platform_name: str
    day_seq: int
    picked_up_at: str
    total: int
    items: str
    refunded: bool


async def picked_up_recently(db: Database, store: str, since_day: dt.date) -> list[PickedUp]:
    query = (
        select(orders)
        .where(
            orders.c.store_id == store,
            orders.c.status == "picked_up",
            orders.c.picked_up_at >= day_start(since_day),
        )
        .order_by(orders.c.picked_up_at.desc())
        .limit(PENDING_LIMIT)
    )
    async with db.read() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [
        PickedUp(
            id=r["id"],
            platform_name=PLATFORM_NAMES.get(r["platform"], r["platform"]),
            day_seq=r["day_seq"],
            picked_up_at=r["picked_up_at"],
            total=r["total"],
            items=_items_text(_json_list(r["items"])),
            refunded=r["refunded_at"] is not None,
        )
        for r in rows
    ]


# -- sales -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SaleLine:
    barcode: str
    name: str
    qty: int
    amount: int  # fen, qty x unit price


@dataclass(frozen=True, slots=True)
class Sale:
    day: dt.date
    channel: str  # a platform, or checkout / vend / locker
    total: int  # fen
    deductions: int  # platform commission and fees, fen
    lines: tuple[SaleLine, ...]


@dataclass
class DaySales:
    day: dt.date
    revenue: int = 0
    profit: int | None = 0  # None: no sale of the day has a known cost
    sales: int = 0
    uncosted: int = 0  # lines whose cost the catalog does not know


@dataclass(frozen=True, slots=True)
class TopSeller:
    barcode: str
    name: str
    qty: int
    amount: int


async def sales_since(db: Database, store: str, first_day: dt.date) -> list[Sale]:
    """Every sale from `first_day` on: platform orders picked up (not refunded since),
    and the store's own sales (`sale.completed`), each counted once: a store sale that
    fulfils a platform order is that order's."""
    start = day_start(first_day)
    order_query = select(
        orders.c.id,
        orders.c.platform,
        orders.c["items"],  # not .items: that is the column collection's method
        orders.c.total,
        orders.c.fees,
        orders.c.commission,
        orders.c.picked_up_at,
    ).where(
        orders.c.store_id == store,
        orders.c.status == "picked_up",
        orders.c.refunded_at.is_(None),
        orders.c.picked_up_at >= start,
    )
    event_query = select(events.c.ts, events.c.envelope).where(
        events.c.store_id == store, events.c.type == "sale.completed", events.c.ts >= start
    )
    async with db.read() as conn:
        order_rows = (await conn.execute(order_query)).mappings().all()
        event_rows = (await conn.execute(event_query)).all()
        order_ids = await _platform_order_ids(conn, store, event_rows)
    out: list[Sale] = []
    for r in order_rows:
        lines = tuple(
            SaleLine(
                barcode=str(i.get("barcode") or i.get("sku") or ""),
                name=str(i.get("name") or ""),
                qty=_int(i.get("qty")),
                amount=_int(i.get("qty")) * _int(i.get("price")),
            )
            for i in _json_list(r["items"])
        )
        deductions = int(r["fees"]) + int(r["commission"])
        out.append(
            Sale(day_of(r["picked_up_at"]), r["platform"], int(r["total"]), deductions, lines)
        )
    for ev in event_rows:
        data = _data(ev.envelope)
        if isinstance(data.get("order"), str) and data["order"] in order_ids:
            continue
        total = yuan_to_fen(data.get("total"))
        lines = tuple(
            SaleLine(
                barcode=str(i.get("barcode") or ""),
                name=str(i.get("name") or ""),
                qty=_int(i.get("qty")),
                amount=_int(i.get("qty")) * (yuan_to_fen(i.get("price")) or 0),
            )
            for i in _json_list(data.get("items"))
        )
        if total is None:
            total = sum(line.amount for line in lines)
        out.append(Sale(day_of(ev.ts), str(data.get("channel") or "checkout"), total, 0, lines))
    return out


async def _platform_order_ids(conn: Any, store: str, event_rows: Sequence[Any]) -> set[str]:
    named = {o for o in (_data(r.envelope).get("order") for r in event_rows) if isinstance(o, str)}
    if not named:
        return set()
    query = select(orders.c.id).where(orders.c.store_id == store, orders.c.id.in_(sorted(named)))
    return set((await conn.execute(query)).scalars())


def daily_sales(
    sales: Iterable[Sale], days: Sequence[dt.date], costs: Mapping[str, int] | None
) -> list[DaySales]:
    """Revenue and gross profit (revenue - cost of goods - platform commission and fees)
    per day. A sale with any item the catalog has no cost for counts in the revenue and
    is left out of the profit (`uncosted` counts such sales), so the profit shown is
    exact for the sales it covers; with no costs in the catalog at all, profit is None."""
    known = costs if costs else None
    per = {d: DaySales(d, profit=None if known is None else 0) for d in days}
    for sale in sales:
        slot = per.get(sale.day)
        if slot is None:
            continue
        slot.revenue += sale.total
        slot.sales += 1
        if known is None or slot.profit is None:
            continue
        units = [known.get(line.barcode) for line in sale.lines]
        if not sale.lines or any(unit is None for unit in units):
            slot.uncosted += 1
            continue
        cost = sum(unit * line.qty for unit, line in zip(units, sale.lines, strict=True) if unit)
        slot.profit += sale.total - cost - sale.deductions
    return [per[d] for d in days]


def top_sellers(sales: Iterable[Sale], limit: int = 10) -> list[TopSeller]:
    totals: dict[str, list[Any]] = {}
    for sale in sales:
        for line in sale.lines:
            key = line.barcode or line.name
            if not key or line.qty <= 0:
                continue
            slot = totals.setdefault(key, [line.barcode, line.name, 0, 0])
            slot[1] = slot[1] or line.name
            slot[2] += line.qty
            slot[3] += line.amount
    ranked = sorted(totals.values(), key=lambda s: (-s[2], -s[3], s[1]))
    return [TopSeller(*s) for s in ranked[:limit]]


# -- access log --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessEntry:
    ts: str
    granted: bool
    door: str
    who: str
    reason: str


_SCOPES = {"entry": "顾客", "pickup": "骑手", "staff": "店员"}
_METHODS = {"code": "取货码", "pass": "二维码", "remote": "远程"}


async def access_log(db: Database, store: str, limit: int = ACCESS_LIMIT) -> list[AccessEntry]:
    query = (
        select(events.c.ts, events.c.type, events.c.envelope)
        .where(events.c.store_id == store, events.c.type.in_(["access.granted", "access.denied"]))
        .order_by(events.c.seq.desc())
        .limit(limit)
    )
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    out = []
    for r in rows:
        data = _data(r.envelope)
        scope = str(data.get("scope") or "")
        method = str(data.get("method") or "")
        who = _SCOPES.get(scope) or _METHODS.get(method) or method or "—"
        out.append(
            AccessEntry(
                ts=r.ts,
                granted=r.type == "access.granted",
                door=str(data.get("door") or ""),
                who=who,
                reason=str(data.get("reason") or ("granted" if r.type == "access.granted" else "")),
            )
        )
    return out


# -- sync failures -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncFailure:
    target: str  # 美团, 饿了么, ... or the ERP's name
    kind: str
    order: str | None
    status: str  # failed (given up) | retrying
    attempts: int
    error: str
    at: str


_CALL_KINDS = {
    "confirm_order": "确认接单",
    "picking_done": "拣货完成",
    "update_stock": "库存同步",
}


async def platform_failures(db: Database, store: str) -> list[SyncFailure]:
    """Calls to platforms that failed for good, or are failing and being retried."""
    query = (
        select(platform_calls)
        .where(
            platform_calls.c.store_id == store,
            or_(
                platform_calls.c.status == "failed",
                and_(platform_calls.c.status == "pending", platform_calls.c.error.is_not(None)),
            ),
        )
        .order_by(platform_calls.c.updated_at.desc())
        .limit(FAILURE_LIMIT)
    )
    async with db.read() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [
        SyncFailure(
            target=PLATFORM_NAMES.get(r["platform"], r["platform"]),
            kind=_CALL_KINDS.get(r["kind"], r["kind"]),
            order=r["order_id"],
            status="failed" if r["status"] == "failed" else "retrying",
            attempts=r["attempts"],
            error=str(r["error"] or "")[:300],
            at=r["updated_at"],
        )
        for r in rows
    ]


# -- small readers -----------------------------------------------------------------------


def _data(envelope: str) -> dict[str, Any]:
    try:
        parsed = json.loads(envelope)
    except ValueError:
        return {}
    data = parsed.get("data") if isinstance(parsed, dict) else None
    return data if isinstance(data, dict) else {}


def _json_list(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return [i for i in value if isinstance(i, dict)] if isinstance(value, list) else []


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _items_text(items: list[dict[str, Any]]) -> str:
    return "、".join(
        f"{i.get('name') or i.get('barcode') or '?'}×{_int(i.get('qty'))}" for i in items
    )


def _parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
