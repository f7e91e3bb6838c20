"""The lifecycle the hub's background workers share: one task that runs what is due, then
waits until woken or until the next thing is due (at the latest every `poll_s`).

    class Outbox(PollingWorker):
        task_name = "outbox"
        logger = logging.getLogger("cloud.outbox")
        failure = "outbox: cannot send what is due"   # logged with the database's error

        async def run_round(self) -> float | None: ...   # run what is due now
        async def next_due_in(self) -> float: ...         # optional: when the next row is due

    await worker.start()
    worker.wake()          # something was queued: run a round at once
    await worker.stop()    # a round under way gets stop_grace_s to finish, then is cancelled

A round that raises (the database away) is logged and tried again at the next wait;
rows a stopped or cancelled round had leased are someone else's once the lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from sqlalchemy import Select

from cloud.db.engine import Database
from runtime.backoff import Backoff

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class PollingWorker(ABC):
    task_name: ClassVar[str]
    logger: ClassVar[logging.Logger]
    failure: ClassVar[str]  # what a failed round could not do, for the log line
    stop_grace_s: ClassVar[float] = 2.0

    def __init__(
        self,
        db: Database,
        *,
        poll_s: float,
        retry_base_s: float = 5.0,
        retry_max_s: float = 300.0,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.poll_s = poll_s
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @abstractmethod
    async def run_round(self) -> float | None:
        """Run what is due now. Returns the seconds to wait for wake() before the next
        round when the round knows them (0: at once), else None: `next_due_in()` says."""

    async def next_due_in(self) -> float:
        """Seconds until something is due (at most poll_s); asked after a failed round too."""
        return self.poll_s

    def retry_delay(self, attempts: int) -> float:
        """The back-off after `attempts` failed tries: doubling from retry_base_s, capped."""
        return Backoff(self.retry_base_s, self.retry_max_s, jitter=False).delay(attempts - 1)

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.task_name)

    async def stop(self) -> None:
        """Let the round under way (and `_side_tasks()`) finish, up to stop_grace_s, then
        cancel them."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        tasks = [task, *self._side_tasks()]
        try:
            async with asyncio.timeout(self.stop_grace_s):
                await asyncio.gather(*(asyncio.shield(t) for t in tasks), return_exceptions=True)
        except TimeoutError:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def wake(self) -> None:
        self._wake.set()

    def _side_tasks(self) -> Sequence[asyncio.Task[Any]]:
        """Tasks of the worker's own besides its loop, given the same grace at stop."""
        return ()

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            wait: float | None = None
            try:
                wait = await self.run_round()
            except Exception as e:  # the database away: try again at the next wait
                self.logger.error("%s: %s", self.failure, e)
            if self._stopping:
                return
            if wait is None:
                wait = await self.next_due_in()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def _due_in(self, first_due: Select[Any], at_least: float = 0.0) -> float:
        """Seconds until the time `first_due` selects (the earliest next_try text), kept
        within [at_least, poll_s]; poll_s when nothing waits or the database cannot say."""
        try:
            async with self.db.read() as conn:
                first = (await conn.execute(first_due)).scalar()
        except Exception:
            return self.poll_s
        if first is None:
            return self.poll_s
        due = dt.datetime.fromisoformat(first.replace("Z", "+00:00"))
        return min(self.poll_s, max(at_least, (due - self._clock()).total_seconds()))
