"""Pickups back to the platforms: a store's `pickup.completed` event marks its order
picked up in the order service (which tells the platform).

    pickups = PickupProcessor(db, order_service)
    services.events.subscribe("pickups", pickups.on_events)  # the stores' new events
    await pickups.start()                          # retries, and jobs a crash left
    ...
    await pickups.stop()

`on_events` writes one job per NEW pickup.completed event (a duplicate event was not
new, so it adds nothing) before the agent is answered, then runs them in the
background. A failed job (the order service or the platform unavailable) is retried
with a capped exponential backoff; jobs are leased in the database, so hubs sharing it
never run one job twice at the same time. An unknown order is logged and dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Protocol

from cloud.db import pickups as jobs_db
from cloud.db.engine import Database
from cloud.db.pickups import PickupJob
from cloud.envelope import Envelope
from runtime.backoff import Backoff

log = logging.getLogger("cloud.pickups")

PICKUP_TYPE = "pickup.completed"
SWEEP_S = 10.0
LEASE_S = 120.0  # longer than one mark_picked_up may take, platform call included
RETRY_MIN_S = 2.0
RETRY_MAX_S = 600.0
STOP_WAIT_S = 1.0


class PickupSink(Protocol):
    async def mark_picked_up(
        self, store: str, order_id: str, *, courier: str, source: str
    ) -> Any: ...


def retry_delay(attempts: int, lo: float = RETRY_MIN_S, hi: float = RETRY_MAX_S) -> float:
    return Backoff(lo, hi).delay(attempts)


def pickup_jobs(events: list[Envelope]) -> list[tuple[str, str, str]]:
    """(event id, order id, courier) of the well-formed pickup.completed events."""
    out = []
    for e in events:
        if e.type != PICKUP_TYPE:
            continue
        data = json.loads(e.json).get("data")
        order = data.get("order") if isinstance(data, dict) else None
        if not isinstance(order, str) or not order:
            log.warning("pickup event %s has no order id; ignored", e.id)
            continue
        courier = data.get("courier")
        out.append((e.id, order, courier if isinstance(courier, str) and courier else "unknown"))
    return out


class PickupProcessor:
    def __init__(
        self,
        db: Database,
        orders: PickupSink,
        *,
        sweep_s: float = SWEEP_S,
        lease_s: float = LEASE_S,
        retry_min_s: float = RETRY_MIN_S,
        retry_max_s: float = RETRY_MAX_S,
    ) -> None:
        self.db = db
        self.orders = orders
        self._sweep_s = sweep_s
        self._lease_s = lease_s
        self._retry = (retry_min_s, retry_max_s)
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def on_events(self, store: str, events: list[Envelope]) -> None:
        """The events API hook: record the jobs (durably), run them in the background."""
        jobs = pickup_jobs(events)
        if not jobs:
            return
        await jobs_db.add_jobs(self.db, store, jobs)
        loop = asyncio.get_running_loop()
        for event_id, _, _ in jobs:
            task = loop.create_task(self._claim_and_run(store, event_id))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._sweep(), name="pickups")

    async def stop(self) -> None:
        # Jobs under way get a moment to finish: one cut off mid-write would hold an
        # SQLite database's lock past the next writer. Any left are leased and retried.
        if self._running:
            await asyncio.wait(list(self._running), timeout=STOP_WAIT_S)
        tasks = [t for t in [self._task, *self._running] if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    async def idle(self) -> None:
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    async def _claim_and_run(self, store: str, event_id: str) -> None:
        try:
            job = await jobs_db.claim(self.db, store, event_id, lease_s=self._lease_s)
        except Exception as e:
            log.error(
                "pickup %s/%s: could not claim it (the sweep retries): %s", store, event_id, e
            )
            return
        if job is not None:
            await self._run(job)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_s)
            try:
                due = await jobs_db.claim_due(self.db, lease_s=self._lease_s)
            except Exception as e:
                log.error("pickups: could not read the due jobs: %s", e)
                continue
            for job in due:
                await self._run(job)

    async def _run(self, job: PickupJob) -> None:
        source = f"store:{job.store}"
        try:
            result = await self.orders.mark_picked_up(
                job.store, job.order_id, courier=job.courier, source=source
            )
        except Exception as e:
            delay = retry_delay(job.attempts, *self._retry)
            log.warning(
                "pickup of order %s/%s not recorded (attempt %d): %s; retrying in %.0f s",
                job.store,
                job.order_id,
                job.attempts + 1,
                e,
                delay,
            )
            await self._safely(jobs_db.retry_later(self.db, job, f"{type(e).__name__}: {e}", delay))
            return
        if result is None:
            log.warning(
                "pickup event %s: store %s has no order %s", job.event_id, job.store, job.order_id
            )
            await self._safely(jobs_db.finish(self.db, job, "unknown order"))
            return
        log.info("order %s/%s picked up by %s", job.store, job.order_id, job.courier)
        await self._safely(jobs_db.finish(self.db, job))

    async def _safely(self, coro: Any) -> None:
        try:
            await coro
        except Exception as e:  # the lease runs out and the sweep takes the job again
            log.error("pickups: could not update a job: %s", e)
