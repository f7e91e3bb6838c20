"""New platform orders stored in groups: the pushes that arrive together share one write.

A lunch rush is hundreds of pushes a second, each one transaction of a few statements.
On SQLite every transaction waits for the single writer and an fsync; on PostgreSQL for a
commit. So new orders queue here, and one flush stores everything queued: one SELECT for
the ids already stored, one multi-row INSERT each for orders, their log lines and the
confirm calls owed to the platforms, one commit. While a flush runs, the next pushes
queue for the next one: batches grow with the load, a lone push waits for nobody.

The partial unique index on pickup codes still guards them: if anything in a flush
collides (another hub stored the same order, or drew the same code, between our read and
our write), the whole flush rolls back and each of its orders answers `RETRY_ALONE`, so
the caller stores it alone, the careful way (OrderService._create_alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.engine import Database
from cloud.db.tables import order_log, orders, platform_calls
from cloud.db.times import now_text
from cloud.orders.codes import NoFreeCode

log = logging.getLogger("cloud.orders")

RETRY_ALONE: Final = "retry-alone"
MAX_BATCH = 256
_REDRAWS = 3  # reads of the open codes per batch; what still clashes rolls the batch back


@dataclass(frozen=True, slots=True)
class NewOrder:
    """An order ready to store, but for its pickup code (drawn in the flush)."""

    row: Mapping[str, Any]  # the orders row, without pickup_code, created_at, updated_at
    detail: Callable[[str], str]  # code -> the order log line
    source: str
    confirm_args: Mapping[str, Any] | None  # a confirm_order call owed to the platform


@dataclass(frozen=True, slots=True)
class Stored:
    row: Mapping[str, Any]
    created: bool  # False: the order was stored before (a repeated push)


Outcome = Stored | str


class NewOrderWriter:
    def __init__(self, db: Database, draw_code: Callable[[set[str]], str]) -> None:
        """`draw_code(taken)` gives a pickup code not in `taken`."""
        self._db = db
        self._draw_code = draw_code
        self._queue: list[tuple[NewOrder, asyncio.Future[Outcome]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def store(self, order: NewOrder) -> Outcome:
        """Store the order (or find it stored); RETRY_ALONE when its flush collided."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.append((order, future))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush_while_queued())
        return await asyncio.shield(future)  # a caller that gives up leaves the batch intact

    async def _flush_while_queued(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                try:
                    outcomes = await self._flush([o for o, _ in batch])
                except IntegrityError as e:
                    log.info(
                        "a batch of %d new orders collided (%s); storing them one by one",
                        len(batch),
                        type(e).__name__,
                    )
                    outcomes = [RETRY_ALONE] * len(batch)
                except BaseException as e:
                    # The waiting pushes get the error (answered 5xx; the platform retries).
                    # Anything worse than an Exception (cancelled) ends the writer: every
                    # queued push gets it too rather than waiting forever.
                    if not isinstance(e, Exception):
                        batch, self._queue = batch + self._queue, []
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(e)
                    if not isinstance(e, Exception):
                        raise
                    continue
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if not future.done():
                        future.set_result(outcome)
        finally:
            self._flushing = None

    async def _flush(self, batch: list[NewOrder]) -> list[Outcome]:
        ids = list({o.row["id"] for o in batch})
        async with self._db.write() as conn:
            found = await conn.execute(select(orders).where(orders.c.id.in_(ids)))
            stored: dict[str, Stored] = {
                r["id"]: Stored(dict(r), created=False) for r in found.mappings()
            }
            now = now_text()
            fresh = [o for o in _first_of_each(batch) if o.row["id"] not in stored]
            codes = await self._draw_codes(conn, fresh)
            rows: list[dict[str, Any]] = []
            logs: list[dict[str, Any]] = []
            calls: list[dict[str, Any]] = []
            for o, code in zip(fresh, codes, strict=True):
                oid = o.row["id"]
                row = {
                    **o.row,
                    "pickup_code": code,
                    "created_at": now,
                    "updated_at": now,
                    "picked_up_at": None,
                    "refunded_at": None,
                }
                rows.append(row)
                stored[oid] = Stored(row, created=True)
                logs.append(
                    {
                        "order_id": oid,
                        "at": now,
                        "from_status": None,
                        "to_status": row["status"],
                        "source": o.source[:100],
                        "detail": o.detail(code)[:4000],
                    }
                )
                if o.confirm_args is not None:
                    calls.append(
                        {
                            "platform": row["platform"],
                            "store_id": row["store_id"],
                            "order_id": oid,
                            "kind": "confirm_order",
                            "args": json.dumps(dict(o.confirm_args), ensure_ascii=False),
                            "status": "pending",
                            "attempts": 0,
                            "error": None,
                            "next_try": now,
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
            if rows:
                await conn.execute(orders.insert(), rows)
                await conn.execute(order_log.insert(), logs)
            if calls:
                await conn.execute(platform_calls.insert(), calls)
        # The same order pushed twice in one batch: the first stores it, the second finds it.
        out: list[Outcome] = []
        seen: set[str] = set()
        for o in batch:
            oid = o.row["id"]
            result = stored[oid]
            out.append(Stored(result.row, created=False) if oid in seen else result)
            seen.add(oid)
        return out

    async def _draw_codes(self, conn: AsyncConnection, fresh: list[NewOrder]) -> list[str]:
        """A pickup code per order, unique within the batch and, as read in this
        transaction, among its store's open orders. Without the read, a store with a
        thousand open orders sees one draw in a thousand collide, which fails the whole
        batch of a busy minute; the read costs one indexed query per batch."""
        taken: dict[str, set[str]] = {}  # store -> codes drawn in this batch
        codes: list[str] = []
        for o in fresh:
            codes.append(self._draw_code(taken.setdefault(o.row["store_id"], set())))
            taken[o.row["store_id"]].add(codes[-1])
        for _ in range(_REDRAWS if codes else 0):
            open_codes = await conn.execute(
                select(orders.c.store_id, orders.c.pickup_code).where(
                    orders.c.status == "pending",  # the unique index's own condition
                    orders.c.store_id.in_(taken),
                    orders.c.pickup_code.in_(set(codes)),
                )
            )
            clashes = {(store, code) for store, code in open_codes}
            if not clashes:
                break
            for store, code in clashes:
                taken.setdefault(store, set()).add(code)
            try:
                for i, o in enumerate(fresh):
                    if (o.row["store_id"], codes[i]) in clashes:
                        codes[i] = self._draw_code(taken[o.row["store_id"]])
                        taken[o.row["store_id"]].add(codes[i])
            except NoFreeCode:
                break  # the insert collides, and the order alone is told there is none
        return codes

    async def close(self) -> None:
        task = self._flushing
        if task is not None:
            with contextlib.suppress(Exception):
                await task


def _first_of_each(batch: list[NewOrder]) -> list[NewOrder]:
    """The batch without repeats of an order (a push the platform sent twice at once)."""
    seen: dict[str, NewOrder] = {}
    for o in batch:
        seen.setdefault(o.row["id"], o)
    return list(seen.values())
