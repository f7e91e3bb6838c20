"""The hub's orders: taken from platform pushes, told to stores, picked up, refunded.

    service = OrderService(cfg, db, clients)        # clients: {"meituan": MeituanClient, ...}
    service.on_change(delivery.on_change)          # called after every committed change
    await service.start()                          # platform calls: tried, retried
    await service.ingest(push, source="meituan:push")
    await service.mark_picked_up("demo-001", "meituan-1001", courier="c-7", source="store:demo-001")
    await service.close()

Every change is one transaction: the order, its log line, and any call owed to the
platform (confirm, picking done) are written together, so a call is never lost to a
crash or an outage; cloud/orders/calls.py makes and retries it. Pushes are idempotent:
an order is stored once per (platform, platform order id), a cancellation or refund
applies once. Listeners hear of a change only after it is committed.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.config import HubConfig
from cloud.db.engine import Database
from cloud.db.tables import order_log, orders, platform_calls, refunds
from cloud.db.times import now_text
from cloud.orders.calls import PlatformCalls, queue_call
from cloud.orders.codes import CODE_LENGTH, Draw, new_pickup_code
from cloud.orders.model import ChangeKind, StoredOrder, hub_order_id
from cloud.orders.new_orders import NewOrder, NewOrderWriter, Stored
from cloud.orders.stores import StoreDirectory
from cloud.platforms.base import (
    NormalizedOrder,
    PlatformBadRequest,
    PlatformCallError,
    PlatformClient,
    PlatformPush,
)

log = logging.getLogger("cloud.orders")

Listener = Callable[[StoredOrder, ChangeKind], Awaitable[None]]
# Two hubs giving the same free code at once: one insert fails on the unique index and
# picks again. More tries than that means something else is wrong.
_INSERT_TRIES = 8


class UnknownShop(PlatformBadRequest):
    """A platform order for a shop that no store in hub.yaml maps (stores[].platforms)."""


class OrderService:
    def __init__(
        self,
        cfg: HubConfig,
        db: Database,
        clients: Mapping[str, PlatformClient],
        *,
        draw: Draw = secrets.randbelow,
        code_length: int = CODE_LENGTH,
        **call_options: Any,
    ) -> None:
        """`call_options` tune the platform-call retries (see PlatformCalls)."""
        self.cfg = cfg
        self.db = db
        self.clients = clients
        self.stores = StoreDirectory(cfg.stores)
        self.calls = PlatformCalls(db, clients, **call_options)
        self._draw = draw
        self._code_length = code_length
        self._listeners: list[Listener] = []
        self._new_orders = NewOrderWriter(
            db, lambda taken: new_pickup_code(taken, length=code_length, draw=draw)
        )

    async def start(self) -> None:
        await self.calls.start()

    async def close(self) -> None:
        await self._new_orders.close()
        await self.calls.stop()

    async def __aenter__(self) -> OrderService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def on_change(self, callback: Listener, *, first: bool = False) -> None:
        """`callback(order, kind)` after every committed change that a store would see;
        kind is created, cancelled, picked_up or refunded (updated: the order as the
        store holds it changed otherwise). A platform status that changes nothing at the
        store is logged only. A failing listener is logged and does not stop the others.
        Listeners are called one after another; `first` puts this one before the others
        (delivery to the store, which must not wait for bookkeeping's writes)."""
        if first:
            self._listeners.insert(0, callback)
        else:
            self._listeners.append(callback)

    # -- from the platforms -------------------------------------------------------------

    async def ingest(self, push: PlatformPush, source: str) -> StoredOrder | None:
        """Apply one push; the order as it now is, or None when the push names no order
        the hub has (a ping, a status change or cancellation of an unknown order).
        UnknownShop for a new order of an unmapped shop; PlatformCallError when the
        order had to be fetched and could not be (the platform will push again)."""
        if push.kind == "ping":
            return None
        if push.kind == "new":
            order = push.order
            if order is None:
                # A platform that pushes only ids pushes them again: fetch only the new.
                known = await self._by_platform_id(push)
                if known is not None:
                    return known
                order = await self._fetch(push)
            return await self._create(order, source)
        if push.kind in ("cancelled", "refunded"):
            return await self._withdraw(push, source)
        return await self._platform_status(push, source)

    async def _by_platform_id(self, push: PlatformPush) -> StoredOrder | None:
        async with self.db.read() as conn:
            row = await _order_row(conn, hub_order_id(push.platform, push.platform_order_id))
        return None if row is None else StoredOrder.from_row(row)

    async def _fetch(self, push: PlatformPush) -> NormalizedOrder:
        client = self.clients.get(push.platform)
        if client is None:
            raise PlatformCallError(f"{push.platform} is not configured; cannot fetch the order")
        order = await client.fetch_order(push)
        if order.platform_order_id != push.platform_order_id:
            raise PlatformCallError(
                f"{push.platform} answered order {order.platform_order_id!r} "
                f"for {push.platform_order_id!r}"
            )
        return order

    async def _create(self, order: NormalizedOrder, source: str) -> StoredOrder:
        store = self.stores.store_for(order.platform, order.shop_id)
        if store is None:
            raise UnknownShop(
                f"no store has {order.platform} shop {order.shop_id!r} "
                f"(hub.yaml stores[].platforms.{order.platform})"
            )
        oid = hub_order_id(order.platform, order.platform_order_id)
        items = self.stores.with_shelves(store.id, order.items)
        status = "cancelled" if order.cancelled else "pending"
        accept = status == "pending" and store.auto_accept
        summary = f"new {order.platform} order, day #{order.day_seq}"
        suffix = "; confirming it (auto_accept)" if accept else ""
        outcome = await self._new_orders.store(
            NewOrder(
                row={
                    "id": oid,
                    "store_id": store.id,
                    "platform": order.platform,
                    "platform_order_id": order.platform_order_id,
                    "shop_id": order.shop_id,
                    "view_id": order.view_id,
                    "day_seq": order.day_seq,
                    "status": status,
                    "platform_status": order.platform_status[:64],
                    "note": order.note,
                    "items": _items_json(items),
                    "total": order.total,
                    "fees": order.fees,
                    "commission": order.commission,
                    "courier": None,
                    "delivery": _delivery_json(order),
                },
                detail=lambda code: f"{summary}, code {code}{suffix}",
                source=source,
                confirm_args=_ref_args(order.platform_order_id, order.shop_id) if accept else None,
            )
        )
        if not isinstance(outcome, Stored):
            return await self._create_alone(order, source)
        stored = StoredOrder.from_row(outcome.row)
        if not outcome.created:
            return stored
        log.info(
            "order stored",
            extra={"order": oid, "store": store.id, "status": status, "source": source},
        )
        if accept:
            self.calls.wake()
        await self._notify(stored, "created")
        return stored

    async def _create_alone(self, order: NormalizedOrder, source: str) -> StoredOrder:
        """One order in its own transaction, retried on collisions: the careful path for
        an order whose batch collided with another hub's writes."""
        store = self.stores.store_for(order.platform, order.shop_id)
        assert store is not None  # _create checked it
        oid = hub_order_id(order.platform, order.platform_order_id)
        items = self.stores.with_shelves(store.id, order.items)
        status = "cancelled" if order.cancelled else "pending"
        accept = status == "pending" and store.auto_accept
        for attempt in range(_INSERT_TRIES):
            try:
                async with self.db.write() as conn:
                    existing = await _order_row(conn, oid)
                    if existing is not None:
                        return StoredOrder.from_row(existing)
                    now = now_text()
                    # The partial unique index keeps codes unique among open orders, so a
                    # random draw is enough; reading every open code (which grows with the
                    # backlog, on every push) is left for when draws keep colliding.
                    taken = await _open_codes(conn, store.id) if attempt >= 2 else ()
                    code = new_pickup_code(taken, length=self._code_length, draw=self._draw)
                    await conn.execute(
                        orders.insert().values(
                            id=oid,
                            store_id=store.id,
                            platform=order.platform,
                            platform_order_id=order.platform_order_id,
                            shop_id=order.shop_id,
                            view_id=order.view_id,
                            day_seq=order.day_seq,
                            pickup_code=code,
                            status=status,
                            platform_status=order.platform_status[:64],
                            note=order.note,
                            items=_items_json(items),
                            total=order.total,
                            fees=order.fees,
                            commission=order.commission,
                            courier=None,
                            delivery=_delivery_json(order),
                            created_at=now,
                            updated_at=now,
                        )
                    )
                    detail = f"new {order.platform} order, day #{order.day_seq}, code {code}"
                    if accept:
                        detail += "; confirming it (auto_accept)"
                    await _log(conn, oid, None, status, source, detail, now)
                    if accept:
                        await queue_call(
                            conn,
                            platform=order.platform,
                            store=store.id,
                            order_id=oid,
                            kind="confirm_order",
                            args=_ref_args(order.platform_order_id, order.shop_id),
                            now=now,
                        )
                    row = await _order_row(conn, oid)
            except IntegrityError as e:
                # Another hub stored this order, or gave this code, first: look again.
                log.info("order %s: insert collided (%s); trying again", oid, type(e).__name__)
                continue
            assert row is not None
            stored = StoredOrder.from_row(row)
            log.info(
                "order stored",
                extra={"order": oid, "store": store.id, "status": status, "source": source},
            )
            if accept:
                self.calls.wake()
            await self._notify(stored, "created")
            return stored
        raise RuntimeError(f"order {oid}: could not be stored after {_INSERT_TRIES} tries")

    async def _withdraw(self, push: PlatformPush, source: str) -> StoredOrder | None:
        """A cancellation or refund: cancels a pending order; after pickup, a refund."""
        oid = hub_order_id(push.platform, push.platform_order_id)
        kind: ChangeKind | None = None
        async with self.db.write() as conn:
            row = await _order_row(conn, oid)
            if row is None:
                log.info("%s of unknown order %s ignored", push.kind, oid)
                return None
            now = now_text()
            why = f"{push.kind} by {push.platform}" + (f": {push.reason}" if push.reason else "")
            platform_status = (push.platform_status or row["platform_status"])[:64]
            if row["status"] == "pending":
                await conn.execute(
                    update(orders)
                    .where(orders.c.id == oid)
                    .values(status="cancelled", platform_status=platform_status, updated_at=now)
                )
                await _log(conn, oid, "pending", "cancelled", source, why, now)
                # A confirmation not made yet would only be refused now.
                await conn.execute(
                    update(platform_calls)
                    .where(
                        platform_calls.c.order_id == oid,
                        platform_calls.c.kind == "confirm_order",
                        platform_calls.c.status == "pending",
                    )
                    .values(status="dropped", error="the order was cancelled", updated_at=now)
                )
                kind = "cancelled"
            elif row["status"] == "picked_up" and row["refunded_at"] is None:
                await conn.execute(
                    refunds.insert().values(
                        order_id=oid,
                        store_id=row["store_id"],
                        platform=push.platform,
                        at=now,
                        amount=row["total"],
                        source=source,
                        reason=push.reason or push.kind,
                    )
                )
                await conn.execute(
                    update(orders)
                    .where(orders.c.id == oid)
                    .values(refunded_at=now, platform_status=platform_status, updated_at=now)
                )
                await _log(conn, oid, "picked_up", "picked_up", source, f"refund: {why}", now)
                kind = "refunded"
            row = await _order_row(conn, oid)
        assert row is not None
        stored = StoredOrder.from_row(row)
        if kind is not None:
            log.info("order %s", kind, extra={"order": oid, "source": source})
            await self._notify(stored, kind)
        return stored

    async def _platform_status(self, push: PlatformPush, source: str) -> StoredOrder | None:
        oid = hub_order_id(push.platform, push.platform_order_id)
        async with self.db.write() as conn:
            row = await _order_row(conn, oid)
            if row is None:
                return None
            status = push.platform_status[:64]
            if status and status != row["platform_status"]:
                now = now_text()
                await conn.execute(
                    update(orders)
                    .where(orders.c.id == oid)
                    .values(platform_status=status, updated_at=now)
                )
                detail = f"{push.platform} status {status}" + (
                    f": {push.reason}" if push.reason else ""
                )
                await _log(conn, oid, row["status"], row["status"], source, detail, now)
                row = await _order_row(conn, oid)
        assert row is not None
        return StoredOrder.from_row(row)

    # -- from the stores ----------------------------------------------------------------

    async def mark_picked_up(
        self, store: str, order_id: str, *, courier: str, source: str
    ) -> StoredOrder | None:
        """The courier took the order: picked up, and the platform told (picking done).
        Idempotent; None for an order the store does not have."""
        async with self.db.write() as conn:
            row = await _order_row(conn, order_id, store)
            if row is None:
                return None
            changed = row["status"] == "pending"
            now = now_text()
            if changed:
                await conn.execute(
                    update(orders)
                    .where(orders.c.id == order_id)
                    .values(
                        status="picked_up",
                        courier=courier[:200],
                        picked_up_at=now,
                        updated_at=now,
                    )
                )
                detail = f"picked up by courier {courier}; telling {row['platform']}"
                await _log(conn, order_id, "pending", "picked_up", source, detail, now)
                await queue_call(
                    conn,
                    platform=row["platform"],
                    store=store,
                    order_id=order_id,
                    kind="picking_done",
                    args=_ref_args(row["platform_order_id"], row["shop_id"]),
                    now=now,
                )
                row = await _order_row(conn, order_id, store)
            elif row["status"] == "cancelled":
                # The goods left with a courier although the platform cancelled the order.
                detail = f"the store reports a pickup by courier {courier} of a cancelled order"
                await _log(conn, order_id, "cancelled", "cancelled", source, detail, now)
                log.warning("pickup of cancelled order %s/%s", store, order_id)
        assert row is not None
        stored = StoredOrder.from_row(row)
        if changed:
            self.calls.wake()
            await self._notify(stored, "picked_up")
        return stored

    async def update_stock(self, store: str, items: Sequence[Mapping[str, Any]]) -> int:
        """Tell every platform the store sells on its stock of these items
        ({sku | barcode, qty} each); returns how many platform calls were queued."""
        lines: list[dict[str, Any]] = [
            {
                "sku": str(i.get("sku") or ""),
                "barcode": str(i.get("barcode") or ""),
                "qty": int(i["qty"]),
            }
            for i in items
        ]
        for line in lines:
            if not (line["sku"] or line["barcode"]) or line["qty"] < 0:
                raise ValueError(f"a stock line needs a sku or a barcode, and qty >= 0: {line}")
        queued = 0
        async with self.db.write() as conn:
            for platform in self.clients:
                shop = self.stores.shop_of(store, platform)
                if shop is None:
                    continue
                await queue_call(
                    conn,
                    platform=platform,
                    store=store,
                    order_id=None,
                    kind="update_stock",
                    args={"shop_id": shop, "items": lines},
                )
                queued += 1
        if queued:
            self.calls.wake()
        return queued

    # -- reading ------------------------------------------------------------------------

    async def list_orders(
        self, store: str, *, status: str | None = None, updated_after: str | None = None
    ) -> list[StoredOrder]:
        """The store's orders, oldest change first. status: pending, picked_up,
        cancelled, or refunded (picked up, then refunded); updated_after: RFC 3339 UTC
        text as the hub stores times ("2025-01-02T03:04:05.000006Z")."""
        query = select(orders).where(orders.c.store_id == store)
        if status == "refunded":
            query = query.where(orders.c.refunded_at.is_not(None))
        elif status is not None:
            query = query.where(orders.c.status == status)
        if updated_after is not None:
            query = query.where(orders.c.updated_at > updated_after)
        query = query.order_by(orders.c.updated_at, orders.c.id)
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [StoredOrder.from_row(r) for r in rows]

    async def open_since(self, store: str, since: str) -> list[StoredOrder]:
        """The store's orders waiting for a courier, created at or after `since` (RFC 3339
        UTC text as stored), oldest first: what the door poster's courier side lists."""
        query = (
            select(orders)
            .where(
                orders.c.store_id == store,
                orders.c.status == "pending",
                orders.c.created_at >= since,
            )
            .order_by(orders.c.created_at, orders.c.id)
        )
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [StoredOrder.from_row(r) for r in rows]

    async def get(self, store: str, order_id: str) -> StoredOrder | None:
        async with self.db.read() as conn:
            row = await _order_row(conn, order_id, store)
        return None if row is None else StoredOrder.from_row(row)

    async def order_log(self, order_id: str) -> list[dict[str, Any]]:
        """Every change of the order, oldest first: {at, from_status, to_status, source, detail}."""
        query = (
            select(
                order_log.c.at,
                order_log.c.from_status,
                order_log.c.to_status,
                order_log.c.source,
                order_log.c.detail,
            )
            .where(order_log.c.order_id == order_id)
            .order_by(order_log.c.id)
        )
        async with self.db.read() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    async def platform_calls(self, order_id: str | None = None) -> list[dict[str, Any]]:
        """Calls owed to platforms (of one order, or all), with status, attempts and error."""
        query = select(
            platform_calls.c.id,
            platform_calls.c.platform,
            platform_calls.c.store_id,
            platform_calls.c.order_id,
            platform_calls.c.kind,
            platform_calls.c.status,
            platform_calls.c.attempts,
            platform_calls.c.error,
            platform_calls.c.next_try,
        ).order_by(platform_calls.c.id)
        if order_id is not None:
            query = query.where(platform_calls.c.order_id == order_id)
        async with self.db.read() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    async def refunds(self, store: str) -> list[dict[str, Any]]:
        query = (
            select(
                refunds.c.order_id,
                refunds.c.at,
                refunds.c.amount,
                refunds.c.source,
                refunds.c.reason,
            )
            .where(refunds.c.store_id == store)
            .order_by(refunds.c.id)
        )
        async with self.db.read() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    async def _notify(self, order: StoredOrder, kind: ChangeKind) -> None:
        for listener in list(self._listeners):
            try:
                await listener(order, kind)
            except Exception:
                log.exception("order listener failed", extra={"order": order.id, "kind": kind})


async def _order_row(
    conn: AsyncConnection, order_id: str, store: str | None = None
) -> Mapping[Any, Any] | None:
    query = select(orders).where(orders.c.id == order_id)
    if store is not None:
        query = query.where(orders.c.store_id == store)
    return (await conn.execute(query)).mappings().first()


async def _open_codes(conn: AsyncConnection, store: str) -> set[str]:
    query = select(orders.c.pickup_code).where(
        orders.c.store_id == store, orders.c.status == "pending"
    )
    return set((await conn.execute(query)).scalars())


async def _log(
    conn: AsyncConnection,
    order_id: str,
    from_status: str | None,
    to_status: str,
    source: str,
    detail: str,
    now: str,
) -> None:
    await conn.execute(
        order_log.insert().values(
            order_id=order_id,
            at=now,
            from_status=from_status,
            to_status=to_status,
            source=source[:100],
            detail=detail[:4000],
        )
    )


def _ref_args(platform_order_id: str, shop_id: str) -> dict[str, str]:
    return {"platform_order_id": platform_order_id, "shop_id": shop_id}


def _items_json(items: Sequence[Any]) -> str:
    return json.dumps([i.to_json() for i in items], ensure_ascii=False)


def _delivery_json(order: NormalizedOrder) -> str | None:
    return (
        None if order.delivery is None else json.dumps(order.delivery.to_json(), ensure_ascii=False)
    )
