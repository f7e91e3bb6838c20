"""Orders to their stores: each change the order service reports becomes a command.

    delivery = OrderDelivery(bus, db)
    order_service.on_change(delivery.on_change)
    ...
    await delivery.stop()

created / updated -> `orders.upsert {orders: [order.to_agent()]}`; cancelled ->
`orders.cancel {ids: [id]}`; other kinds (picked_up, refunded) need nothing at the store.

Fire and forget, with retries: `on_change` returns at once. Changes to one store that
come together go out as one command (cloud/command_batches.py). Changes to one order go out
one at a time, in order, and a newer change replaces an older one still being retried
(so a cancel can never be overtaken by the upsert before it). A command unanswered
within WAIT_REPLY_S is sent again (a new jti; both commands are idempotent) while the
store is online; for a store that is offline the broker keeps the command in the
store's persistent session, and the agent also catches up over HTTP when it comes back
(GET /api/v1/stores/S/orders, agent/order_sync.py), so nothing is retried for it.
Each attempt and its outcome are recorded in `order_deliveries` (the dashboard's
"delivered to store").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

from cloud.bus import HubBus
from cloud.command_batches import CommandBatches
from cloud.db import deliveries
from cloud.db.deliveries import Delivery
from cloud.db.engine import Database
from cloud.db.times import now_text

log = logging.getLogger("cloud.delivery")

WAIT_REPLY_S = 5.0
RETRY_DELAYS_S = (1.0, 5.0, 20.0)
# Long enough for a command queued by the broker during a short outage to still apply;
# replays are refused by jti whatever the TTL.
COMMAND_TTL_S = 600
FLUSH_S = 0.05


class DeliverableOrder(Protocol):
    # Read-only, as a frozen StoredOrder's fields are.
    @property
    def store(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...

    def to_agent(self) -> dict[str, Any]: ...


def command_for(order: DeliverableOrder, kind: str) -> tuple[str, dict[str, Any]] | None:
    """The command that brings the store up to this change, or None."""
    if kind in ("created", "updated"):
        return "orders.upsert", {"orders": [order.to_agent()]}
    if kind == "cancelled":
        return "orders.cancel", {"ids": [order.id]}
    return None


class OrderDelivery:
    def __init__(
        self,
        bus: HubBus,
        db: Database,
        *,
        wait_reply_s: float = WAIT_REPLY_S,
        retry_delays_s: Sequence[float] = RETRY_DELAYS_S,
        ttl: int = COMMAND_TTL_S,
    ) -> None:
        self.bus = bus
        self.db = db
        self._wait = wait_reply_s
        self._delays = tuple(retry_delays_s)
        self._ttl = ttl
        self._latest: dict[tuple[str, str], tuple[str, str, dict[str, Any]]] = {}
        self._workers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self.records = DeliveryRecords(db)
        self.batches = CommandBatches(bus, ttl=ttl)

    async def on_change(self, order: DeliverableOrder, kind: str) -> None:
        """The OrderService listener: queue the command and return at once."""
        command = command_for(order, kind)
        if command is None:
            return
        key = (order.store, order.id)
        self._latest[key] = (kind, *command)
        if key not in self._workers:
            self._idle.clear()
            task = asyncio.get_running_loop().create_task(self._work(key))
            self._workers[key] = task

    async def idle(self) -> None:
        """Return once every queued change has been delivered or given up on."""
        await self._idle.wait()

    async def stop(self) -> None:
        tasks = list(self._workers.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.batches.stop()
        await self.records.stop()

    async def _work(self, key: tuple[str, str]) -> None:
        try:
            while key in self._latest:
                kind, cmd, args = self._latest.pop(key)
                try:
                    await self._deliver(key, kind, cmd, args)
                except Exception:
                    log.exception("order %s/%s: delivery failed", *key)
        finally:
            del self._workers[key]
            if not self._workers:
                self._idle.set()

    async def _deliver(
        self, key: tuple[str, str], kind: str, cmd: str, args: dict[str, Any]
    ) -> None:
        store, order_id = key
        attempt, alone = 0, False
        while attempt <= len(self._delays):
            attempt += 1
            # A store known to be offline gets the command queued by the broker in its
            # session, and catches up over HTTP anyway: no point waiting for its reply.
            offline = self.bus.store_online(store) is False
            wait = None if offline else self._wait
            batch = self.batches.join(store, cmd, args, wait_reply=wait, alone=alone)
            record = Delivery(
                store, order_id, kind, cmd, batch.jti, attempt, now_text(), None, "sending", None
            )
            self.records.note(record)
            sent = await batch.sent()
            reply, error = sent.reply, sent.unavailable
            outcome = "unsent" if error is not None else "no_reply"
            if reply is not None:
                ok = reply.get("ok") is True
                error = None if ok else _error_text(reply)
                self.records.note(
                    replace(
                        record,
                        outcome="acked" if ok else "refused",
                        error=error,
                        acked_at=now_text() if ok else None,
                    )
                )
                if not ok and batch.size > 1:
                    # The store refuses a command whole: this order goes again on its own,
                    # so a bad neighbour cannot keep it from the store.
                    attempt, alone = attempt - 1, True
                    continue
                if ok:
                    log.debug("order %s/%s: %s delivered", store, order_id, cmd)
                else:
                    log.warning(
                        "order %s/%s: the store refused %s: %s", store, order_id, cmd, error
                    )
                return
            if self.bus.store_online(store) is False:
                outcome = "store_offline"  # it catches up when it comes back
            self.records.note(replace(record, outcome=outcome, error=error))
            if outcome == "store_offline" or key in self._latest or attempt > len(self._delays):
                if outcome != "store_offline" and key not in self._latest:
                    log.warning(
                        "order %s/%s: %s not confirmed by the store (%s)",
                        store,
                        order_id,
                        cmd,
                        error or "no reply",
                    )
                return
            await asyncio.sleep(self._delays[attempt - 1])
            if key in self._latest:
                return  # a newer change replaces this one


class DeliveryRecords:
    """The `order_deliveries` rows, written in batches: the latest record per order is
    kept in memory and a flusher writes whatever changed every FLUSH_S in one
    transaction, so delivering an order costs the database no commit of its own."""

    def __init__(self, db: Database, flush_s: float = FLUSH_S) -> None:
        self.db = db
        self._flush_s = flush_s
        self._dirty: dict[tuple[str, str], Delivery] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._stop_event = asyncio.Event()

    def note(self, record: Delivery) -> None:
        self._dirty[(record.store, record.order_id)] = record
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def flush(self) -> None:
        batch, self._dirty = list(self._dirty.values()), {}
        try:
            await deliveries.save_deliveries(self.db, batch)
        except Exception as e:  # shown on a dashboard; delivery goes on without it
            log.error("could not record %d order deliveries: %s", len(batch), e)

    async def stop(self) -> None:
        """Write what is left. The flusher is not cancelled mid-write: an SQLite write
        cut off in its thread would hold the database lock past our next one."""
        self._stopping = True
        self._stop_event.set()
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush_s):
                    await self._stop_event.wait()
            self._wake.clear()
            await self.flush()


def _error_text(reply: dict[str, Any]) -> str:
    error = reply.get("error")
    if isinstance(error, dict):
        return f"{error.get('code', '?')}: {error.get('message', '')}"[:2000]
    return "refused"
