"""Stock to the platforms: after a change, every platform listing the item gets its quantity.

    push = StockPush(db, ledger, catalog, clients, stores)   # clients: {"meituan": ...}
    ledger.on_change(push.on_change)
    await push.start()
    ...
    await push.stop()

A change marks the item dirty; after DEBOUNCE_S (more changes gather meanwhile) the
item's current quantity and version are written to `stock_push` as what each platform
SKU mapped to it should show (`wanted_*`), never replacing a newer one. Then each
(store, platform) with SKUs due is pushed by a worker of its own, in batches of the
platform's size, through the platform's stock API (cloud/platforms/*.py update_stock).
A SKU is leased while its call is under way, so one SKU is never in two calls at once
(not even from two hubs), and what a call sends is what is wanted when it starts: the
platform gets quantities in version order, a newer one superseding any older still
waiting. A failed call is retried after a capped exponential backoff, the reason kept
in the row (the dashboard shows it; `on_failure` listeners hear of it). Negative stock
is shown to platforms as 0.

Nothing is lost to a crash between a change and its push: at start, and every POLL_S,
items whose level is newer than what their platform SKUs want are staged again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, case, func, or_, select, update

from cloud.db.engine import Database
from cloud.db.times import now_text, utc_text
from cloud.orders.stores import StoreDirectory
from cloud.platforms.base import PlatformClient, PlatformError, StockLine
from cloud.stock.catalog import Catalog
from cloud.stock.ledger import LedgerEntry, StockLedger
from cloud.stock.tables import sku_map, stock_levels, stock_push
from cloud.worker import PollingWorker

log = logging.getLogger("cloud.stock.push")

DEBOUNCE_S = 0.2
RETRY_BASE_S = 5.0
RETRY_MAX_S = 300.0
POLL_S = 30.0
LEASE_S = 60.0  # longer than a batch's calls may take (10 s timeout each)
STOP_GRACE_S = 2.0
# SKUs per call, as each platform's stock API allows.
BATCH = {"meituan": 200, "eleme": 100, "jddj": 50, "douyin": 20}
DEFAULT_BATCH = 50

FailureCallback = Callable[[str, str, list[str], str, int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Due:
    sku: str
    barcode: str
    qty: int
    version: int
    attempts: int


def _later(seconds: float) -> str:
    return utc_text(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds))


class StockPush(PollingWorker):
    """stop() lets the calls under way finish (up to STOP_GRACE_S). What is not pushed yet
    stays in the table (or the levels) and goes out after the next start."""

    task_name = "stock-push"
    logger = log
    failure = "stock push: cannot push what is due"  # each step also logs its own
    stop_grace_s = STOP_GRACE_S

    def __init__(
        self,
        db: Database,
        ledger: StockLedger,
        catalog: Catalog,
        clients: Mapping[str, PlatformClient],
        stores: StoreDirectory,
        *,
        debounce_s: float = DEBOUNCE_S,
        retry_base_s: float = RETRY_BASE_S,
        retry_max_s: float = RETRY_MAX_S,
        poll_s: float = POLL_S,
    ) -> None:
        super().__init__(db, poll_s=poll_s, retry_base_s=retry_base_s, retry_max_s=retry_max_s)
        self.ledger = ledger
        self.catalog = catalog
        self.clients = clients
        self.stores = stores
        self.debounce_s = debounce_s
        self._dirty: dict[str, set[str]] = {}
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._workers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._reconciled_at = 0.0
        self._failure_callbacks: list[FailureCallback] = []
        self.calls = 0  # platform calls made (for benchmarks)

    # -- wiring -------------------------------------------------------------------------

    def on_failure(self, callback: FailureCallback) -> None:
        """`callback(store, platform, skus, error, attempts)` after a failed push."""
        self._failure_callbacks.append(callback)

    async def on_change(self, store: str, barcode: str, qty: int, entry: LedgerEntry) -> None:
        """The ledger listener: the item is pushed after the debounce."""
        self.mark(store, [barcode])

    def mark(self, store: str, barcodes: Collection[str]) -> None:
        """Push these items' current quantity (a new SKU mapping, a change)."""
        if not barcodes:
            return
        self._dirty.setdefault(store, set()).update(barcodes)
        self._quiet.clear()
        self._wake.set()

    async def idle(self) -> None:
        """Return once nothing is dirty and no push is under way (failed pushes waiting
        for their retry do not count)."""
        await self._quiet.wait()

    # -- the loop -----------------------------------------------------------------------

    async def _run(self) -> None:
        await self._guarded(self._reconcile)
        self._reconciled_at = asyncio.get_running_loop().time()
        await super()._run()

    async def run_round(self) -> float | None:
        if self._dirty:
            await asyncio.sleep(self.debounce_s)  # let a burst gather
            dirty, self._dirty = self._dirty, {}
            for store, barcodes in dirty.items():
                await self._guarded(functools.partial(self.stage, store, barcodes))
        await self._guarded(self._start_due)
        if asyncio.get_running_loop().time() - self._reconciled_at > self.poll_s:
            self._reconciled_at = asyncio.get_running_loop().time()
            await self._guarded(self._reconcile)
        self._update_quiet()
        return 0.0 if self._dirty else None

    def _side_tasks(self) -> Sequence[asyncio.Task[None]]:
        return list(self._workers.values())

    async def _guarded(self, step: Callable[[], Awaitable[Any]]) -> None:
        try:
            await step()
        except Exception as e:  # the database away: the next round tries again
            log.error("stock push: %s: %s", type(e).__name__, e)
            await asyncio.sleep(min(1.0, self.poll_s))

    def _update_quiet(self) -> None:
        if not self._dirty and not self._workers:
            self._quiet.set()

    async def next_due_in(self) -> float:
        wanted = stock_push.c.wanted_version > stock_push.c.sent_version
        return await self._due_in(select(func.min(stock_push.c.next_try)).where(wanted), 0.01)

    # -- staging what each platform should show -----------------------------------------

    async def stage(self, store: str, barcodes: Collection[str]) -> int:
        """Write these items' current quantity as wanted by each platform SKU mapped to
        them; returns how many SKUs that touched. Items never booked are left alone."""
        listings = [
            (platform, sku, barcode)
            for platform, sku, barcode in await self.catalog.listings_of(store, barcodes)
            if platform in self.clients and self.stores.shop_of(store, platform)
        ]
        if not listings:
            return 0
        levels = await self.ledger.levels(store, {b for _, _, b in listings})
        now = now_text()
        rows = [
            {
                "store_id": store,
                "platform": platform,
                "sku": sku,
                "barcode": barcode,
                "wanted_qty": levels[barcode][0],
                "wanted_version": levels[barcode][1],
                "sent_qty": None,
                "sent_version": 0,
                "attempts": 0,
                "error": None,
                "next_try": now,
                "lease_until": "",
                "pushed_at": None,
                "updated_at": now,
            }
            for platform, sku, barcode in listings
            if barcode in levels
        ]
        if not rows:
            return 0
        ins = self.db.insert(stock_push)
        moved = ins.excluded.barcode != stock_push.c.barcode
        statement = ins.on_conflict_do_update(
            index_elements=[stock_push.c.store_id, stock_push.c.platform, stock_push.c.sku],
            set_={
                "wanted_qty": ins.excluded.wanted_qty,
                "wanted_version": ins.excluded.wanted_version,
                "barcode": ins.excluded.barcode,
                # A SKU mapped to another item starts that item's versions afresh.
                "sent_version": case((moved, 0), else_=stock_push.c.sent_version),
                "updated_at": ins.excluded.updated_at,
            },
            where=or_(ins.excluded.wanted_version > stock_push.c.wanted_version, moved),
        )
        async with self.db.write() as conn:
            await conn.execute(statement, rows)
        return len(rows)

    async def _reconcile(self) -> None:
        """Stage every item whose level is newer than what its platform SKUs want."""
        query = (
            select(stock_levels.c.store_id, stock_levels.c.barcode)
            .join(
                sku_map,
                and_(
                    sku_map.c.store_id == stock_levels.c.store_id,
                    sku_map.c.barcode == stock_levels.c.barcode,
                ),
            )
            .outerjoin(
                stock_push,
                and_(
                    stock_push.c.store_id == sku_map.c.store_id,
                    stock_push.c.platform == sku_map.c.platform,
                    stock_push.c.sku == sku_map.c.sku,
                ),
            )
            .where(
                sku_map.c.platform.in_(list(self.clients)),
                or_(
                    stock_push.c.sku.is_(None),
                    stock_push.c.barcode != stock_levels.c.barcode,
                    stock_push.c.wanted_version < stock_levels.c.version,
                ),
            )
            .distinct()
        )
        async with self.db.read() as conn:
            found = (await conn.execute(query)).all()
        todo: dict[str, set[str]] = {}
        for store, barcode in found:
            todo.setdefault(store, set()).add(barcode)
        for store, barcodes in todo.items():
            await self.stage(store, barcodes)

    # -- pushing ------------------------------------------------------------------------

    async def _start_due(self) -> None:
        now = now_text()
        query = (
            select(stock_push.c.store_id, stock_push.c.platform)
            .where(
                stock_push.c.wanted_version > stock_push.c.sent_version,
                stock_push.c.next_try <= now,
                stock_push.c.lease_until < now,
            )
            .distinct()
        )
        async with self.db.read() as conn:
            groups = (await conn.execute(query)).all()
        for store, platform in groups:
            key = (store, platform)
            if key in self._workers or self._stopping:
                continue
            self._quiet.clear()
            task = asyncio.get_running_loop().create_task(self._work(key))
            self._workers[key] = task

    async def _work(self, key: tuple[str, str]) -> None:
        try:
            while not self._stopping:
                claimed = await self._claim(*key)
                if not claimed[1]:
                    return
                await self._send(*key, claimed)
        except Exception:
            log.exception("stock push to %s for %s failed unexpectedly", key[1], key[0])
        finally:
            del self._workers[key]
            self._update_quiet()
            self._wake.set()

    async def _claim(self, store: str, platform: str) -> tuple[str, list[_Due]]:
        now = now_text()
        lease = _later(LEASE_S)
        limit = BATCH.get(platform, DEFAULT_BATCH)
        due = and_(
            stock_push.c.store_id == store,
            stock_push.c.platform == platform,
            stock_push.c.wanted_version > stock_push.c.sent_version,
            stock_push.c.next_try <= now,
            stock_push.c.lease_until < now,
        )
        async with self.db.write() as conn:
            rows = (
                await conn.execute(
                    select(
                        stock_push.c.sku,
                        stock_push.c.barcode,
                        stock_push.c.wanted_qty,
                        stock_push.c.wanted_version,
                        stock_push.c.attempts,
                    )
                    .where(due)
                    .order_by(stock_push.c.sku)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return lease, []
            taken = await conn.execute(
                update(stock_push)
                .where(due, stock_push.c.sku.in_([r[0] for r in rows]))
                .values(lease_until=lease)
                .returning(
                    stock_push.c.sku,
                    stock_push.c.barcode,
                    stock_push.c.wanted_qty,
                    stock_push.c.wanted_version,
                    stock_push.c.attempts,
                )
            )
            claimed = [_Due(s, b, int(q), int(v), int(a)) for s, b, q, v, a in taken.all()]
        return lease, claimed

    async def _send(self, store: str, platform: str, claim: tuple[str, list[_Due]]) -> None:
        lease, due = claim
        if not due:
            return
        client = self.clients.get(platform)
        shop = self.stores.shop_of(store, platform)
        error: str | None = None
        if client is None or shop is None:
            error = f"{platform} is not configured for store {store} (hub.yaml)"
        else:
            lines = [StockLine(qty=max(0, d.qty), sku=d.sku, barcode=d.barcode) for d in due]
            try:
                self.calls += 1
                await client.update_stock(shop, lines)
            except PlatformError as e:
                error = str(e)
            except Exception as e:  # a bug in a client must not stop the pushes
                log.exception("stock push to %s failed unexpectedly", platform)
                error = f"{type(e).__name__}: {e}"
        now = now_text()
        mine = and_(
            stock_push.c.store_id == store,
            stock_push.c.platform == platform,
            stock_push.c.sku == bindparam("b_sku"),
            stock_push.c.lease_until == lease,
        )
        async with self.db.write() as conn:
            if error is None:
                await conn.execute(
                    update(stock_push)
                    .where(mine, stock_push.c.sent_version < bindparam("b_version"))
                    .values(
                        sent_qty=bindparam("b_qty"),
                        sent_version=bindparam("b_version"),
                        attempts=0,
                        error=None,
                        pushed_at=now,
                        next_try=now,
                        lease_until="",
                        updated_at=now,
                    ),
                    [{"b_sku": d.sku, "b_qty": d.qty, "b_version": d.version} for d in due],
                )
            else:
                await conn.execute(
                    update(stock_push)
                    .where(mine)
                    .values(
                        attempts=bindparam("b_attempts"),
                        error=error[:2000],
                        next_try=bindparam("b_next"),
                        lease_until="",
                        updated_at=now,
                    ),
                    [
                        {
                            "b_sku": d.sku,
                            "b_attempts": d.attempts + 1,
                            "b_next": _later(self.retry_delay(d.attempts + 1)),
                        }
                        for d in due
                    ],
                )
        if error is None:
            log.debug(
                "stock pushed", extra={"store": store, "platform": platform, "skus": len(due)}
            )
            return
        attempts = max(d.attempts for d in due) + 1
        log.warning(
            "stock push to %s for %s failed (attempt %d), retrying in %.1f s: %s",
            platform,
            store,
            attempts,
            self.retry_delay(attempts),
            error,
        )
        for callback in list(self._failure_callbacks):
            try:
                await callback(store, platform, [d.sku for d in due], error, attempts)
            except Exception:
                log.exception("stock push failure listener failed")

    # -- reading ------------------------------------------------------------------------

    async def state(self, store: str) -> list[dict[str, Any]]:
        """Each platform SKU's push state: what it should show, what it was last told,
        and the last failure (for the dashboard)."""
        query = (
            select(stock_push)
            .where(stock_push.c.store_id == store)
            .order_by(stock_push.c.platform, stock_push.c.sku)
        )
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            {
                "platform": r["platform"],
                "sku": r["sku"],
                "barcode": r["barcode"],
                "qty": max(0, int(r["wanted_qty"])),
                "pushed_qty": None if r["sent_qty"] is None else max(0, int(r["sent_qty"])),
                "pending": int(r["wanted_version"]) > int(r["sent_version"]),
                "attempts": int(r["attempts"]),
                "error": r["error"],
                "next_try": r["next_try"]
                if int(r["wanted_version"]) > int(r["sent_version"])
                else None,
                "pushed_at": r["pushed_at"],
            }
            for r in rows
        ]
