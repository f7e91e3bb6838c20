"""Calls the hub owes the platforms, kept in the `platform_calls` table until done.

    await queue_call(conn, platform=..., store=..., order_id=..., kind="confirm_order",
                     args={...})               # in the transaction of the change causing it
    calls = PlatformCalls(db, clients)
    await calls.start()                        # tries due calls now and whenever woken
    calls.wake()                               # a call was queued: try it at once

A call is tried at once, then again after a capped exponential backoff while it fails
(the platform down, refusing, or not configured), up to `max_attempts`; its last error
and attempt count stay in the row, and each try is written to the order's log. Calls
are claimed by moving their next_try ahead (a lease), so hubs sharing a database never
make one call twice at the same time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.engine import Database
from cloud.db.leases import claim_due
from cloud.db.tables import order_log, orders, platform_calls
from cloud.db.times import now_text, utc_text
from cloud.platforms.base import OrderRef, PlatformClient, PlatformError, StockLine
from cloud.worker import PollingWorker

log = logging.getLogger("cloud.orders.calls")

CallKind = Literal["confirm_order", "picking_done", "update_stock"]
RETRY_BASE_S = 5.0
RETRY_MAX_S = 300.0
MAX_ATTEMPTS = 30
LEASE_S = 60.0  # longer than one call may take (10 s timeout, plus a fetch)
POLL_S = 30.0
STOP_GRACE_S = 2.0
BATCH = 50


@dataclass(frozen=True, slots=True)
class PendingCall:
    id: int
    platform: str
    store: str
    order_id: str | None
    kind: CallKind
    args: dict[str, Any]
    attempts: int


async def queue_call(
    conn: AsyncConnection,
    *,
    platform: str,
    store: str,
    order_id: str | None,
    kind: CallKind,
    args: Mapping[str, Any],
    now: str | None = None,
) -> int:
    now = now or now_text()
    result = await conn.execute(
        platform_calls.insert()
        .values(
            platform=platform,
            store_id=store,
            order_id=order_id,
            kind=kind,
            args=json.dumps(dict(args), ensure_ascii=False),
            status="pending",
            attempts=0,
            error=None,
            next_try=now,
            created_at=now,
            updated_at=now,
        )
        .returning(platform_calls.c.id)
    )
    return int(result.scalar_one())


def _later(seconds: float) -> str:
    return utc_text(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds))


class PlatformCalls(PollingWorker):
    """stop() lets the calls under way finish (up to STOP_GRACE_S), then stops. A call cut
    off stays owed: it is tried again once its lease runs out."""

    task_name = "platform-calls"
    logger = log
    failure = "platform calls: cannot run the due calls"
    stop_grace_s = STOP_GRACE_S

    def __init__(
        self,
        db: Database,
        clients: Mapping[str, PlatformClient],
        *,
        retry_base_s: float = RETRY_BASE_S,
        retry_max_s: float = RETRY_MAX_S,
        max_attempts: int = MAX_ATTEMPTS,
        poll_s: float = POLL_S,
    ) -> None:
        super().__init__(db, poll_s=poll_s, retry_base_s=retry_base_s, retry_max_s=retry_max_s)
        self.clients = clients
        self._max_attempts = max_attempts

    async def run_round(self) -> None:
        await self.run_due()

    async def next_due_in(self) -> float:
        pending = platform_calls.c.status == "pending"
        return await self._due_in(select(func.min(platform_calls.c.next_try)).where(pending))

    async def run_due(self) -> int:
        """Try every call that is due now; returns how many were tried."""
        claimed = await self._claim_due()
        if claimed:
            await asyncio.gather(*(self._attempt(call) for call in claimed))
        return len(claimed)

    async def _claim_due(self) -> list[PendingCall]:
        rows = await claim_due(
            self.db,
            platform_calls,
            now=now_text(),
            lease_until=_later(LEASE_S),
            order_by=[platform_calls.c.next_try, platform_calls.c.id],
            limit=BATCH,
        )
        return [
            PendingCall(
                id=row["id"],
                platform=row["platform"],
                store=row["store_id"],
                order_id=row["order_id"],
                kind=row["kind"],
                args=json.loads(row["args"]),
                attempts=row["attempts"],
            )
            for row in rows
        ]

    async def _attempt(self, call: PendingCall) -> None:
        attempts = call.attempts + 1
        error: str | None = None
        try:
            await self._call(call)
        except PlatformError as e:
            error = str(e)
        except Exception as e:  # a bug in a client must not stop the other calls
            log.exception("platform call %s %s failed unexpectedly", call.platform, call.kind)
            error = f"{type(e).__name__}: {e}"
        now = now_text()
        if error is None:
            values: dict[str, Any] = {"status": "done", "error": None, "next_try": now}
            detail = f"{call.kind}: done (attempt {attempts})"
            log.info(
                "platform call done",
                extra={"platform": call.platform, "kind": call.kind, "order": call.order_id},
            )
        elif attempts >= self._max_attempts:
            values = {"status": "failed", "error": error[:2000], "next_try": now}
            detail = f"{call.kind}: failed for good after {attempts} attempts: {error}"
            log.error("platform call %s %s gave up: %s", call.platform, call.kind, error)
        else:
            delay = self.retry_delay(attempts)
            values = {"status": "pending", "error": error[:2000], "next_try": _later(delay)}
            detail = f"{call.kind}: failed (attempt {attempts}), next try in {delay:.0f} s: {error}"
            log.warning(
                "platform call %s %s failed (attempt %d), retrying in %.0f s: %s",
                call.platform,
                call.kind,
                attempts,
                delay,
                error,
            )
        async with self.db.write() as conn:
            # A call dropped meanwhile (its order cancelled) stays dropped.
            result = await conn.execute(
                update(platform_calls)
                .where(platform_calls.c.id == call.id, platform_calls.c.status == "pending")
                .values(attempts=attempts, updated_at=now, **values)
            )
            if result.rowcount == 1 and call.order_id is not None:
                status = (
                    await conn.execute(select(orders.c.status).where(orders.c.id == call.order_id))
                ).scalar()
                if status is not None:
                    await conn.execute(
                        order_log.insert().values(
                            order_id=call.order_id,
                            at=now,
                            from_status=status,
                            to_status=status,
                            source=f"hub:{call.platform}",
                            detail=detail[:4000],
                        )
                    )

    async def _call(self, call: PendingCall) -> None:
        client = self.clients.get(call.platform)
        if client is None:
            raise PlatformError(f"{call.platform} is not configured in hub.yaml (platforms:)")
        if call.kind == "confirm_order":
            await client.confirm_order(OrderRef(**call.args))
        elif call.kind == "picking_done":
            await client.picking_done(OrderRef(**call.args))
        elif call.kind == "update_stock":
            lines = [StockLine(**line) for line in call.args["items"]]
            await client.update_stock(call.args["shop_id"], lines)
        else:
            raise PlatformError(f"unknown call kind {call.kind!r}")
