"""The ERP outbox: every document owed to an ERP, sent once, retried until it is taken.

    outbox = ErpOutbox(db, clients, stock_reader=sync.stock_reader)  # clients: {"wdt": ...}
    await outbox.enqueue(erp="wdt", store="demo-001", kind="sales_order",
                         key="wdt:trade:meituan-1001", ref="meituan-1001", payload={...})
    await outbox.run_due()          # send what is due now (the worker loop calls this)
    await outbox.failures()         # what is waiting or given up, with the ERP's reason

A row's key is unique, so a change heard twice queues its document once. A row is
claimed by moving its next_try ahead by LEASE (under FOR UPDATE SKIP LOCKED on
PostgreSQL), so two hubs on one database never send it at once; a hub that dies while
sending leaves the row to be tried again when the lease runs out (the ERP takes a
document again by its number: 旺店通 updates a trade pushed twice, 聚水潭 an order).

An ERP that cannot be reached is retried without limit, the delay doubling from
retry_base up to retry_max; an ERP that refuses is retried `max_refusals` times, then the
row is `failed`; a document the ERP has no API for is `unsupported`. Time comes from
`clock`, so tests drive a day of outage without waiting for it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.engine import Database
from cloud.db.leases import claim_due
from cloud.db.tables import ERP_TABLES
from cloud.db.times import utc_text
from cloud.erp.base import (
    ErpClient,
    ErpRefused,
    ErpUnavailable,
    ErpUnsupported,
    ExpenseEntry,
    Product,
    RefundOrder,
    SalesOrder,
    StockLevel,
    StockScope,
)
from cloud.worker import Clock, PollingWorker, utc_now

log = logging.getLogger("cloud.erp.outbox")

(erp_outbox,) = ERP_TABLES

KINDS = ("sales_order", "refund_order", "expenses", "products", "stock_upload")
LEASE_S = 120.0
BATCH = 100
POLL_S = 30.0
STOP_GRACE_S = 3.0
WAITING_S = 5.0  # a row whose `after` is not sent yet looks again this much later

# store, barcodes -> {barcode: quantity now}
StockReader = Callable[[str, Collection[str]], Awaitable[Mapping[str, int]]]


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    key: str
    erp: str
    store: str
    kind: str
    ref: str
    payload: dict[str, Any]
    attempts: int
    refusals: int
    after: str | None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> OutboxRow:
        return cls(
            int(row["id"]),
            row["key"],
            row["erp"],
            row["store_id"],
            row["kind"],
            row["ref"],
            json.loads(row["payload"]),
            int(row["attempts"]),
            int(row["refusals"]),
            row["after"],
        )


class ErpOutbox(PollingWorker):
    """stop() lets a send under way finish (up to STOP_GRACE_S); a row cut off is sent
    again when its lease runs out."""

    task_name = "erp-outbox"
    logger = log
    failure = "ERP outbox: cannot send what is due"
    stop_grace_s = STOP_GRACE_S

    def __init__(
        self,
        db: Database,
        clients: Mapping[str, ErpClient],
        *,
        stock_reader: StockReader | None = None,
        clock: Clock = utc_now,
        retry_base_s: float = 10.0,
        retry_max_s: float = 900.0,
        max_refusals: int = 20,
        poll_s: float = POLL_S,
    ) -> None:
        super().__init__(
            db, poll_s=poll_s, retry_base_s=retry_base_s, retry_max_s=retry_max_s, clock=clock
        )
        self.clients = clients
        self.stock_reader = stock_reader
        self._max_refusals = max_refusals

    # -- queueing -----------------------------------------------------------------------

    async def enqueue(
        self,
        *,
        erp: str,
        store: str,
        kind: str,
        key: str,
        ref: str,
        payload: Mapping[str, Any],
        after: str | None = None,
        grp: str | None = None,
        conn: AsyncConnection | None = None,
    ) -> bool:
        """Queue one document; False when its key is queued already (or, with `grp`,
        when a row of that group is still pending: it will send the newest state)."""
        if kind not in KINDS:
            raise ValueError(f"unknown ERP document kind {kind!r}")
        if conn is None:
            async with self.db.write() as own:
                queued = await self._insert(own, erp, store, kind, key, ref, payload, after, grp)
        else:
            queued = await self._insert(conn, erp, store, kind, key, ref, payload, after, grp)
        if queued:
            self.wake()
        return queued

    async def _insert(
        self,
        conn: AsyncConnection,
        erp: str,
        store: str,
        kind: str,
        key: str,
        ref: str,
        payload: Mapping[str, Any],
        after: str | None,
        grp: str | None,
    ) -> bool:
        if grp is not None:
            pending = await conn.execute(
                select(erp_outbox.c.id)
                .where(erp_outbox.c.grp == grp, erp_outbox.c.status == "pending")
                .limit(1)
            )
            if pending.first() is not None:
                return False
        now = utc_text(self._clock())
        result = await conn.execute(
            self.db.insert(erp_outbox)
            .values(
                key=key[:200],
                erp=erp,
                store_id=store,
                kind=kind,
                ref=ref[:128],
                payload=json.dumps(dict(payload), ensure_ascii=False),
                status="pending",
                attempts=0,
                refusals=0,
                error=None,
                after=after,
                grp=grp,
                next_try=now,
                created_at=now,
                updated_at=now,
                done_at=None,
            )
            .on_conflict_do_nothing(index_elements=[erp_outbox.c.key])
            .returning(erp_outbox.c.id)
        )
        return result.scalar() is not None

    # -- the worker ---------------------------------------------------------------------

    async def run_round(self) -> None:
        while await self.run_due() and not self._stopping:
            pass

    async def next_due_in(self) -> float:
        pending = erp_outbox.c.status == "pending"
        return await self._due_in(select(func.min(erp_outbox.c.next_try)).where(pending))

    async def run_due(self) -> int:
        """Send every row due now; returns how many were tried."""
        claimed = await self._claim_due()
        if not claimed:
            return 0
        ready: list[OutboxRow] = []
        for row in claimed:
            if row.after is not None and not await self._sent(row.after):
                await self._postpone(row, f"waiting for {row.after} to be sent first")
            else:
                ready.append(row)
        stock = [r for r in ready if r.kind == "stock_upload"]
        others = [r for r in ready if r.kind != "stock_upload"]
        groups: dict[tuple[str, str, str], list[OutboxRow]] = {}
        for r in stock:
            groups.setdefault((r.erp, r.store, r.payload.get("warehouse", "")), []).append(r)
        await asyncio.gather(
            *(self._attempt([r], self._send_one(r)) for r in others),
            *(self._stock_group(rows) for rows in groups.values()),
        )
        return len(claimed)

    async def _stock_group(self, rows: Sequence[OutboxRow]) -> None:
        sent: dict[str, int] = {}
        if not await self._attempt(rows, self._send_stock(rows, sent)):
            return
        # A change booked while this upload was under way found its item's row pending
        # and queued nothing: look again, and queue what moved since.
        assert self.stock_reader is not None
        now = await self.stock_reader(rows[0].store, list(sent))
        for barcode, qty in sent.items():
            if int(now.get(barcode, 0)) != qty:
                row = next(r for r in rows if r.payload["barcode"] == barcode)
                await self.enqueue(
                    erp=row.erp,
                    store=row.store,
                    kind="stock_upload",
                    key=f"{row.key}:again",
                    ref=barcode,
                    payload=row.payload,
                    grp=f"{row.erp}:stock:{row.store}:{barcode}",
                )

    async def _claim_due(self) -> list[OutboxRow]:
        now = self._clock()
        rows = await claim_due(
            self.db,
            erp_outbox,
            now=utc_text(now),
            lease_until=utc_text(now + dt.timedelta(seconds=LEASE_S)),
            order_by=[erp_outbox.c.id],
            limit=BATCH,
        )
        return [OutboxRow.from_row(row) for row in rows]

    async def _sent(self, key: str) -> bool:
        async with self.db.read() as conn:
            status = (
                await conn.execute(select(erp_outbox.c.status).where(erp_outbox.c.key == key))
            ).scalar()
        # A document that was never queued (its ERP sync was off then) holds nothing up.
        return status is None or status in ("done", "unsupported")

    async def _postpone(self, row: OutboxRow, why: str) -> None:
        later = utc_text(self._clock() + dt.timedelta(seconds=WAITING_S))
        async with self.db.write() as conn:
            await conn.execute(
                update(erp_outbox)
                .where(erp_outbox.c.id == row.id, erp_outbox.c.status == "pending")
                .values(next_try=later, error=why, updated_at=utc_text(self._clock()))
            )

    def _client(self, erp: str) -> ErpClient:
        client = self.clients.get(erp)
        if client is None:
            raise ErpUnavailable(f"{erp} is not configured in hub.yaml (erp:)")
        return client

    async def _send_one(self, row: OutboxRow) -> None:
        client = self._client(row.erp)
        p = row.payload
        if row.kind == "sales_order":
            await client.push_sales_order(SalesOrder.from_json(p))
        elif row.kind == "refund_order":
            await client.push_refund_order(RefundOrder.from_json(p))
        elif row.kind == "expenses":
            await client.push_expenses([ExpenseEntry.from_json(e) for e in p["entries"]])
        elif row.kind == "products":
            await client.push_products(p["shop"], [Product.from_json(x) for x in p["products"]])
        else:
            raise ErpUnsupported(f"unknown document kind {row.kind!r}")

    async def _send_stock(self, rows: Sequence[OutboxRow], sent: dict[str, int]) -> None:
        """One upload for every due item of a store, each at its quantity as it is now
        (not as it was when queued), so an older count never follows a newer one."""
        client = self._client(rows[0].erp)
        if self.stock_reader is None:
            raise ErpUnavailable("no stock ledger to read quantities from")
        barcodes = sorted({r.payload["barcode"] for r in rows})
        quantities = await self.stock_reader(rows[0].store, barcodes)
        levels = [StockLevel(b, int(quantities.get(b, 0))) for b in barcodes]
        scope = StockScope(rows[0].payload["shop"], rows[0].payload.get("warehouse", ""))
        await client.upload_stock(scope, levels, ref=f"sg-{rows[0].store}-{rows[0].id}")
        sent.update({s.barcode: s.qty for s in levels})

    async def _attempt(self, rows: Sequence[OutboxRow], sending: Awaitable[None]) -> bool:
        """Send, and record the outcome on every row; True when the ERP took it."""
        error: str | None = None
        refused = unsupported = False
        try:
            await sending
        except ErpUnsupported as e:
            error, unsupported = str(e), True
        except ErpRefused as e:
            error, refused = f"refused by the ERP: {e}", True
        except ErpUnavailable as e:
            error = str(e)
        except Exception as e:  # a bug in a client must not stop the other rows
            log.exception("ERP push failed unexpectedly", extra={"keys": [r.key for r in rows]})
            error = f"{type(e).__name__}: {e}"
        now = self._clock()
        async with self.db.write() as conn:
            for row in rows:
                await conn.execute(
                    update(erp_outbox)
                    .where(erp_outbox.c.id == row.id, erp_outbox.c.status == "pending")
                    .values(**self._outcome(row, now, error, refused, unsupported))
                )
        return error is None

    def _outcome(
        self,
        row: OutboxRow,
        now: dt.datetime,
        error: str | None,
        refused: bool,
        unsupported: bool,
    ) -> dict[str, Any]:
        attempts = row.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "updated_at": utc_text(now)}
        if error is None:
            log.info("ERP document sent", extra={"key": row.key, "attempts": attempts})
            return {**values, "status": "done", "error": None, "done_at": utc_text(now)}
        if unsupported:
            log.warning("ERP document not supported: %s: %s", row.key, error)
            return {**values, "status": "unsupported", "error": error[:2000]}
        refusals = row.refusals + (1 if refused else 0)
        if refusals >= self._max_refusals:
            log.error("ERP document given up after %d refusals: %s: %s", refusals, row.key, error)
            return {**values, "status": "failed", "refusals": refusals, "error": error[:2000]}
        delay = self.retry_delay(attempts)
        log.warning(
            "ERP document not sent (attempt %d), next try in %.0f s: %s: %s",
            attempts,
            delay,
            row.key,
            error,
        )
        return {
            **values,
            "refusals": refusals,
            "error": error[:2000],
            "next_try": utc_text(now + dt.timedelta(seconds=delay)),
        }

    # -- reading ------------------------------------------------------------------------

    async def failures(self, store: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Rows not sent and with a reason (waiting to retry, failed, unsupported), newest
        first: what the dashboard lists as ERP sync failures."""
        query = (
            select(
                erp_outbox.c.key,
                erp_outbox.c.erp,
                erp_outbox.c.store_id,
                erp_outbox.c.kind,
                erp_outbox.c.ref,
                erp_outbox.c.status,
                erp_outbox.c.attempts,
                erp_outbox.c.error,
                erp_outbox.c.next_try,
                erp_outbox.c.created_at,
                erp_outbox.c.updated_at,
            )
            .where(
                or_(
                    erp_outbox.c.status.in_(["failed", "unsupported"]),
                    and_(erp_outbox.c.status == "pending", erp_outbox.c.error.is_not(None)),
                )
            )
            .order_by(erp_outbox.c.id.desc())
            .limit(limit)
        )
        if store is not None:
            query = query.where(erp_outbox.c.store_id == store)
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [{**dict(r), "store": r["store_id"]} for r in rows]

    async def rows(self, store: str | None = None) -> list[dict[str, Any]]:
        """Every row, oldest first (for operators and tests)."""
        query = select(erp_outbox).order_by(erp_outbox.c.id)
        if store is not None:
            query = query.where(erp_outbox.c.store_id == store)
        async with self.db.read() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    async def counts(self, store: str | None = None) -> dict[str, int]:
        query = select(erp_outbox.c.status, func.count()).group_by(erp_outbox.c.status)
        if store is not None:
            query = query.where(erp_outbox.c.store_id == store)
        async with self.db.read() as conn:
            return {status: int(n) for status, n in (await conn.execute(query)).all()}
