"""A door's open orders, and a courier claiming one.

Every claim is counted before the order is looked at, against the same per-visitor,
per-address and per-door counts as wrong answers on the entry page (cloud/limits,
atomic in the database, shared by every hub process): a courier's tail is a guess like
an answer. A right tail is given its count back; so is a day number with no open order
(nothing secret was tried). The pass minted is a pickup pass for that one order and
that door; the agent decides on it as at the door (hours, lockdown, single use).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud import signing
from cloud.config import EntryConfig, StoreEntry
from cloud.couriers.tail import tail_matches
from cloud.db.times import utc_text
from cloud.limits.counters import Limiter, Refused
from cloud.limits.entry_rules import ADDRESS, VISITOR, answer_counters
from cloud.orders.model import StoredOrder
from cloud.remote_entry import CommandSender, enter_remotely

log = logging.getLogger("cloud.couriers")

PLATFORMS = ("meituan", "eleme", "jddj", "douyin")
PLATFORM_NAMES = {"meituan": "美团", "eleme": "饿了么", "jddj": "京东到家", "douyin": "抖音"}
# Day numbers start again every day: an order older than this is not "today's #27".
OPEN_WINDOW = dt.timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class CourierDoor:
    store: StoreEntry
    entry: EntryConfig
    door: str


@dataclass(frozen=True, slots=True)
class Claimed:
    order: StoredOrder
    token: str
    opened: bool | None  # None: not tried (store offline); the pass opens at the scanner


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    code: str
    message: str
    retry_after: int | None = None
    left: int | None = None


class OpenOrders(Protocol):
    """What the desk needs of cloud/orders/service.py OrderService."""

    async def open_since(self, store: str, since: str) -> list[StoredOrder]: ...


def find_door(stores: Sequence[StoreEntry], store_id: str, door: str) -> CourierDoor | None:
    """The poster's door: one the store's entry page serves."""
    for store in stores:
        if store.id == store_id and store.entry is not None and door in store.entry.doors:
            return CourierDoor(store, store.entry, door)
    return None


def delivery_view(order: StoredOrder) -> dict[str, str] | None:
    """Where the rider goes next and whom they call, with a map navigation link (高德
    Amap's URI API: a marker at the platform's coordinates, else a search by address)."""
    d = order.delivery
    if not d:
        return None
    address, contact = str(d.get("address") or ""), str(d.get("contact") or "")
    lat, lng = d.get("lat"), d.get("lng")
    if isinstance(lat, int | float) and isinstance(lng, int | float):
        link = f"https://uri.amap.com/marker?position={lng},{lat}&name={quote(address)}"
    elif address:
        link = f"https://uri.amap.com/search?keyword={quote(address)}"
    else:
        link = ""
    return {"address": address, "contact": contact, "map": link}


def pick_list(order: StoredOrder) -> list[dict[str, Any]]:
    return [{"name": i.name, "qty": i.qty, "shelf": i.shelf or ""} for i in order.items]


class CourierDesk:
    def __init__(
        self,
        orders: OpenOrders,
        limiter: Limiter,
        key: Ed25519PrivateKey,
        kid: str,
        *,
        pass_ttl_s: int,
    ) -> None:
        self.orders = orders
        self.limiter = limiter
        self.key = key
        self.kid = kid
        self.pass_ttl_s = pass_ttl_s

    async def open_orders(self, door: CourierDoor) -> list[StoredOrder]:
        since = dt.datetime.now(dt.UTC) - OPEN_WINDOW
        found = await self.orders.open_since(door.store.id, utc_text(since))
        return [o for o in found if o.platform in PLATFORMS]

    async def claim(
        self,
        door: CourierDoor,
        platform: str,
        day_seq: int,
        tail: str,
        *,
        visitor: str,
        address: str,
        bus: CommandSender | None,
    ) -> Claimed | Refusal:
        counters = answer_counters(
            door.store.id,
            door.door,
            visitor=visitor,
            address=address,
            max_wrong=door.entry.max_wrong,
            max_wrong_per_address=door.entry.max_wrong_per_ip,
            window_s=door.entry.wrong_window_seconds,
            limit=door.entry.door_limit,
            regular=False,
        )
        # The decision starts here: this try is counted before the order is looked at.
        taken = await self.limiter.reserve(counters)
        if isinstance(taken, Refused):
            wait = taken.retry_after(self.limiter.now())
            return Refusal(429, "paused", f"尝试次数过多，请 {wait} 秒后再试", retry_after=wait)
        candidates = [
            o
            for o in await self.open_orders(door)
            if o.platform == platform and o.day_seq == day_seq
        ]
        if not candidates:
            await self.limiter.refund(taken)
            name = PLATFORM_NAMES.get(platform, platform)
            return Refusal(404, "no_such_order", f"今天没有待取的{name} #{day_seq} 订单")
        order = candidates[-1]
        if not tail_matches(order.platform_order_id, tail):
            log.info("wrong tail", extra={"store": door.store.id, "door": door.door})
            left = min(
                (c.left for c in taken.counts if c.counter.rule.scope in (VISITOR, ADDRESS)),
                default=0,
            )
            return Refusal(
                403, "wrong_tail", f"订单号后四位不正确（还可以尝试 {left} 次）", left=left
            )
        await self.limiter.refund(taken)
        sub = f"courier-{order.platform}-{order.day_seq}"
        token = signing.mint_pass(
            self.key,
            self.kid,
            store=door.store.id,
            scope="pickup",
            sub=sub,
            door=door.door,
            orders=[order.id],
            ttl=self.pass_ttl_s,
        )
        opened = await enter_remotely(
            bus, door.store.id, door.door, token, sub=sub, wait_s=door.entry.unlock_wait_seconds
        )
        log.info(
            "courier pass minted",
            extra={"store": door.store.id, "door": door.door, "order": order.id, "opened": opened},
        )
        return Claimed(order, token, opened)
