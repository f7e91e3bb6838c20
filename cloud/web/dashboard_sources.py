"""The dashboard's panels that read other parts of the hub: the catalog and stock ledger
(cloud/stock), platform stock pushes, the ERP outbox (cloud/erp).

Tables are found by name in the hub's schema and the stock service on the application,
so a hub built without one of them shows 暂无数据 in that panel (None here) instead of
failing; nothing here writes but `restore_stock`, which goes through the stock service.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy import Table, and_, or_, select

from cloud.api.appkeys import DB
from cloud.db.tables import metadata
from cloud.web.dashboard_data import FAILURE_LIMIT, PLATFORM_NAMES, SyncFailure

log = logging.getLogger("cloud.web.dashboard")

ERP_NAMES = {"wdt": "旺店通", "jst": "聚水潭"}
ERP_KINDS = {
    "sales_order": "销售单",
    "refund_order": "退货单",
    "expenses": "其他费用",
    "products": "商品资料",
    "stock_upload": "库存上传",
}
LOW_STOCK_LIMIT = 50


@dataclass(frozen=True, slots=True)
class LowStock:
    barcode: str
    name: str
    shelf: str
    qty: int
    threshold: int


def _table(name: str) -> Table | None:
    return metadata.tables.get(name)


async def costs(app: web.Application, store: str) -> dict[str, int] | None:
    """barcode -> unit cost in fen, from the store's catalog; None: no catalog here."""
    catalog = _table("catalog")
    if catalog is None:
        return None
    query = select(catalog.c.barcode, catalog.c.cost).where(
        catalog.c.store_id == store, catalog.c.cost.is_not(None)
    )
    async with app[DB].read() as conn:
        return {b: int(c) for b, c in (await conn.execute(query)).all()}


async def low_stock(app: web.Application, store: str) -> list[LowStock] | None:
    """Products at or under their low-stock threshold (库存预警), emptiest first; None:
    no catalog or ledger here. A product never counted has no stock: 0."""
    catalog, levels = _table("catalog"), _table("stock_levels")
    if catalog is None or levels is None:
        return None
    qty = levels.c.qty
    query = (
        select(catalog.c.barcode, catalog.c.name, catalog.c.shelf, catalog.c.low_stock, qty)
        .select_from(
            catalog.outerjoin(
                levels,
                and_(
                    levels.c.store_id == catalog.c.store_id, levels.c.barcode == catalog.c.barcode
                ),
            )
        )
        .where(catalog.c.store_id == store, catalog.c.low_stock.is_not(None))
        .where(or_(qty.is_(None), qty <= catalog.c.low_stock))
        .order_by(qty.is_not(None), qty, catalog.c.barcode)
        .limit(LOW_STOCK_LIMIT)
    )
    async with app[DB].read() as conn:
        rows = (await conn.execute(query)).all()
    return [LowStock(r[0], r[1] or "", r[2] or "", int(r[4] or 0), int(r[3])) for r in rows]


async def stock_push_failures(app: web.Application, store: str) -> list[SyncFailure] | None:
    """Platform stock updates failing (still owed, with an error); None: no pushes here."""
    push = _table("stock_push")
    if push is None:
        return None
    query = (
        select(push)
        .where(
            push.c.store_id == store,
            push.c.error.is_not(None),
            push.c.wanted_version > push.c.sent_version,
        )
        .order_by(push.c.updated_at.desc())
        .limit(FAILURE_LIMIT)
    )
    async with app[DB].read() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [
        SyncFailure(
            target=PLATFORM_NAMES.get(r["platform"], r["platform"]),
            kind="库存同步",
            order=None,
            status="retrying",
            attempts=int(r["attempts"]),
            error=f"{r['barcode']} → {r['wanted_qty']}: {r['error']}"[:300],
            at=r["updated_at"],
        )
        for r in rows
    ]


async def erp_failures(app: web.Application, store: str) -> list[SyncFailure] | None:
    """ERP documents that failed (given up, or being retried); None: no ERP outbox here."""
    outbox = _table("erp_outbox")
    if outbox is None:
        return None
    query = (
        select(outbox)
        .where(
            outbox.c.store_id == store,
            or_(
                outbox.c.status == "failed",
                and_(outbox.c.status == "pending", outbox.c.error.is_not(None)),
            ),
        )
        .order_by(outbox.c.updated_at.desc())
        .limit(FAILURE_LIMIT)
    )
    async with app[DB].read() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [
        SyncFailure(
            target=ERP_NAMES.get(r["erp"], r["erp"]),
            kind=ERP_KINDS.get(r["kind"], r["kind"]),
            order=r["ref"] or None,
            status="failed" if r["status"] == "failed" else "retrying",
            attempts=int(r["attempts"]),
            error=str(r["error"] or "")[:300],
            at=r["updated_at"],
        )
        for r in rows
    ]


def _stock_service(app: web.Application) -> object | None:
    try:
        from cloud.api.stock import STOCK_SERVICE
    except ImportError:
        return None
    return app.get(STOCK_SERVICE)


def can_restore(app: web.Application) -> bool:
    """Whether "restore stock" (一键恢复库存) can be offered for picked-up orders."""
    return _stock_service(app) is not None


class RestoreError(Exception):
    """The stock could not be restored; the message says why."""


async def restore_stock(app: web.Application, store: str, order_id: str, by: str) -> int:
    """Put a picked-up order's goods back into the store's stock (once per order, the
    stock service sees to that); how many units went back."""
    from cloud.api.platforms import ORDERS
    from cloud.stock.feed import RestoreError as FeedRestoreError

    service = _stock_service(app)
    orders = app.get(ORDERS)
    if service is None or orders is None:
        raise RestoreError("this hub keeps no stock ledger")
    order = await orders.get(store, order_id)
    if order is None:
        raise RestoreError(f"store {store} has no order {order_id[:80]!r}")
    try:
        # The stock service behind the read-only protocol this module types it as.
        entries = await service.feed.restore(order, by=by)  # type: ignore[attr-defined]
    except FeedRestoreError as e:
        raise RestoreError(str(e)) from None
    return sum(int(e.delta) for e in entries)
