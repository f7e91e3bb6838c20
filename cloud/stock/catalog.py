"""A store's catalog (barcode = product) and what each platform lists its products as.

    catalog = Catalog(db)
    await catalog.upsert("demo-001", [Product("6901234567892", "可口可乐", 350, shelf="A1")])
    await catalog.map_skus("demo-001", [SkuListing("meituan", "sku-cola", upc="6901234567892")])
    await catalog.unmatched("demo-001")          # platform SKUs no product matches

A platform SKU is matched to a product by barcode: the owner's explicit choice first,
else the barcode the platform lists it with (upc), else the SKU code itself when it is a
barcode of the catalog (merchants often use the barcode as their code). A SKU matching
nothing is kept with an empty barcode and listed as unmatched, and is matched as soon
as a product with its barcode is added.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.config import PLATFORM_NAMES
from cloud.db.engine import Database
from cloud.db.times import now_text
from cloud.stock.product import Product, ProductError
from cloud.stock.tables import catalog, sku_map


@dataclass(frozen=True, slots=True)
class SkuListing:
    """A platform's SKU, as the platform lists it (or as the owner maps it)."""

    platform: str
    sku: str
    upc: str = ""  # the barcode the platform shows, if any
    name: str = ""
    barcode: str = ""  # the owner's explicit choice of product

    def check(self) -> None:
        if self.platform not in PLATFORM_NAMES:
            raise ProductError(f"platform must be one of {', '.join(PLATFORM_NAMES)}")
        if not self.sku or len(self.sku) > 64 or not self.sku.isprintable():
            raise ProductError("sku must be 1-64 printable characters")
        if len(self.upc) > 64 or len(self.barcode) > 64:
            raise ProductError("a barcode is at most 64 characters")


@dataclass(frozen=True, slots=True)
class SkuMapping:
    platform: str
    sku: str
    upc: str
    barcode: str  # "" while unmatched
    name: str

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "sku": self.sku,
            "upc": self.upc,
            "barcode": self.barcode or None,
            "name": self.name,
            "matched": bool(self.barcode),
        }


class Catalog:
    def __init__(self, db: Database) -> None:
        self.db = db
        # (store, platform, sku) known to be recorded: a rush of orders for the same
        # goods then costs no read per order. Rows are never deleted, so it cannot lie.
        self._recorded: set[tuple[str, str, str]] = set()

    # -- products -----------------------------------------------------------------------

    async def upsert(self, store: str, products: Sequence[Product]) -> list[Product]:
        """Add or change these products; returns those that changed (to tell the store).
        Unmatched platform SKUs listing one of their barcodes are matched now."""
        if not products:
            return []
        latest = {p.barcode: p for p in products}
        now = now_text()
        async with self.db.write() as conn:
            before = await _products(conn, store, latest)
            changed = [p for p in latest.values() if before.get(p.barcode) != p]
            if changed:
                ins = self.db.insert(catalog)
                await conn.execute(
                    ins.on_conflict_do_update(
                        index_elements=[catalog.c.store_id, catalog.c.barcode],
                        set_={
                            c: ins.excluded[c]
                            for c in ("name", "price", "cost", "shelf", "low_stock", "updated_at")
                        },
                    ),
                    [
                        {
                            "store_id": store,
                            "barcode": p.barcode,
                            "name": p.name,
                            "price": p.price,
                            "cost": p.cost,
                            "shelf": p.shelf,
                            "low_stock": p.low_stock,
                            "updated_at": now,
                        }
                        for p in changed
                    ],
                )
                await _rematch(conn, store, [p.barcode for p in changed], now)
        return changed

    async def get(self, store: str, barcode: str) -> Product | None:
        async with self.db.read() as conn:
            found = await _products(conn, store, [barcode])
        return found.get(barcode)

    async def products(self, store: str, barcodes: Collection[str] | None = None) -> list[Product]:
        """The store's products (or these of them), by shelf then barcode."""
        async with self.db.read() as conn:
            found = await _products(conn, store, barcodes)
        return sorted(found.values(), key=lambda p: (p.shelf, p.barcode))

    # -- platform SKUs ------------------------------------------------------------------

    async def map_skus(self, store: str, listings: Sequence[SkuListing]) -> list[SkuMapping]:
        """Record these SKUs, each matched to a product if one fits; the mappings as now
        stored. An explicit barcode that is not in the catalog is refused (ProductError)."""
        for listing in listings:
            listing.check()
        now = now_text()
        async with self.db.write() as conn:
            wanted = {b for s in listings for b in (s.barcode, s.upc, s.sku) if b}
            known = set(await _products(conn, store, wanted))
            rows = []
            for s in listings:
                if s.barcode and s.barcode not in known:
                    raise ProductError(
                        f"{s.platform} sku {s.sku}: no product {s.barcode!r} in the catalog"
                    )
                barcode = next((b for b in (s.barcode, s.upc, s.sku) if b and b in known), "")
                rows.append(
                    {
                        "store_id": store,
                        "platform": s.platform,
                        "sku": s.sku,
                        "upc": s.upc,
                        "barcode": barcode,
                        "name": s.name[:200],
                        "updated_at": now,
                    }
                )
            if rows:
                ins = self.db.insert(sku_map)
                await conn.execute(
                    ins.on_conflict_do_update(
                        index_elements=[sku_map.c.store_id, sku_map.c.platform, sku_map.c.sku],
                        set_={c: ins.excluded[c] for c in ("upc", "barcode", "name", "updated_at")},
                    ),
                    rows,
                )
        return [
            SkuMapping(r["platform"], r["sku"], r["upc"], r["barcode"], r["name"]) for r in rows
        ]

    async def learn_skus(self, store: str, listings: Iterable[SkuListing]) -> None:
        """SKUs seen in a platform's order: recorded if new (an owner's mapping stays)."""
        fresh = {
            (s.platform, s.sku): s
            for s in listings
            if s.sku and (store, s.platform, s.sku) not in self._recorded
        }
        if not fresh:
            return
        async with self.db.read() as conn:
            query = select(sku_map.c.platform, sku_map.c.sku).where(sku_map.c.store_id == store)
            have = {(p, s) for p, s in (await conn.execute(query)).all()}
        todo = [s for key, s in fresh.items() if key not in have]
        if todo:
            await self.map_skus(store, todo)
        self._recorded.update((store, p, sku) for p, sku in fresh)

    async def skus(self, store: str, *, unmatched_only: bool = False) -> list[SkuMapping]:
        query = select(sku_map).where(sku_map.c.store_id == store)
        if unmatched_only:
            query = query.where(sku_map.c.barcode == "")
        query = query.order_by(sku_map.c.platform, sku_map.c.sku)
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            SkuMapping(r["platform"], r["sku"], r["upc"], r["barcode"], r["name"]) for r in rows
        ]

    async def unmatched(self, store: str) -> list[SkuMapping]:
        return await self.skus(store, unmatched_only=True)

    async def barcode_of(self, store: str, platform: str, sku: str) -> str:
        """The product a platform's SKU is mapped to, or ""."""
        query = select(sku_map.c.barcode).where(
            sku_map.c.store_id == store, sku_map.c.platform == platform, sku_map.c.sku == sku
        )
        async with self.db.read() as conn:
            return (await conn.execute(query)).scalar() or ""

    async def listings_of(
        self, store: str, barcodes: Collection[str]
    ) -> list[tuple[str, str, str]]:
        """(platform, sku, barcode) of every platform SKU mapped to one of these barcodes."""
        query = select(sku_map.c.platform, sku_map.c.sku, sku_map.c.barcode).where(
            sku_map.c.store_id == store, sku_map.c.barcode.in_(list(barcodes))
        )
        async with self.db.read() as conn:
            return [tuple(r) for r in (await conn.execute(query)).all()]


async def _products(
    conn: AsyncConnection, store: str, barcodes: Collection[str] | None
) -> dict[str, Product]:
    query = select(catalog).where(catalog.c.store_id == store)
    if barcodes is not None:
        query = query.where(catalog.c.barcode.in_(list(barcodes)))
    rows = (await conn.execute(query)).mappings().all()
    return {r["barcode"]: Product.from_row(r) for r in rows}


async def _rematch(conn: AsyncConnection, store: str, barcodes: Sequence[str], now: str) -> None:
    for start in range(0, len(barcodes), 500):
        chunk = list(barcodes[start : start + 500])
        for column in (sku_map.c.upc, sku_map.c.sku):
            await conn.execute(
                update(sku_map)
                .where(
                    and_(sku_map.c.store_id == store, sku_map.c.barcode == "", column.in_(chunk))
                )
                .values(barcode=column, updated_at=now)
            )
