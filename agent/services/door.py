"""One door: its lock, its contact, its exit button, and the alarms every access
controller has.

States: locked -> (grant or exit button) unlocked -> (contact opens) open
-> (longer than held_open_seconds) held_open -> (contact closes) locked.
An unlocked door that nobody opens relocks after unlock_seconds. A contact that opens
with no grant or exit request before it raises `door.forced` (unless the door is free
egress: exits counted by door cycles). The door is locked at start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from agent.config.schema import DoorConfig
from agent.devices.base import DeviceUncertain, DoorLock
from agent.journal import Journal

log = logging.getLogger(__name__)

# An exit request lets the door open without a forced alarm for this long.
EXIT_WINDOW_S = 10.0


class DoorState(StrEnum):
    LOCKED = "locked"
    UNLOCKED = "unlocked"
    OPEN = "open"
    HELD_OPEN = "held_open"


class Door:
    def __init__(
        self,
        cfg: DoorConfig,
        lock: DoorLock,
        journal: Journal,
        occupancy: dict[str, int],
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.cfg = cfg
        self.id = cfg.id
        self._lock = lock
        self._journal = journal
        self._occupancy = occupancy
        self._on_change = on_change
        self.state = DoorState.LOCKED
        self._contact_open: bool | None = None
        self._opened_at = 0.0
        self._exit_until = 0.0
        self._granted_until = 0.0
        self._relock_timer: asyncio.TimerHandle | None = None
        self._held_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        await self._lock.relock()
        self._set(DoorState.LOCKED)

    async def stop(self) -> None:
        for t in (self._relock_timer, self._held_timer):
            if t:
                t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self._lock.relock()
        except Exception as e:  # stopping anyway: say so, don't hide it
            log.error("door %s: could not relock on stop: %s", self.id, e)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- actions -------------------------------------------------------------------

    async def release(
        self, *, by: str, seconds: float | None = None, data: dict[str, Any] | None = None
    ) -> int:
        """Unlock the door (raises DeviceError if the lock does not obey, DeviceUncertain
        if it may have). The caller has already journaled why. Returns when the command
        left for the lock (perf ns)."""
        seconds = seconds or self.cfg.unlock_seconds
        try:
            await self._lock.unlock(seconds)
        except DeviceUncertain:
            # The lock may have opened: an opening now is the grant's, not a forced door.
            self._granted_until = time.monotonic() + seconds
            raise
        now = time.monotonic()
        self._granted_until = now + seconds
        if self.state is DoorState.LOCKED:
            self._set(DoorState.UNLOCKED)
        self._arm_relock(seconds)
        self._record(
            "door.unlocked", {"door": self.id, "by": by, "seconds": seconds, **(data or {})}
        )
        return self._lock.actuated_ns

    def exit_requested(self) -> None:
        self._exit_until = time.monotonic() + EXIT_WINDOW_S
        self._record("door.exit_requested", {"door": self.id})
        if self.cfg.exit_counting == "button":
            self._count_exit()
        self._spawn(self._release_for_exit())

    async def _release_for_exit(self) -> None:
        try:
            await self.release(by="exit_button")
        except Exception as e:
            log.error("door %s: exit button could not release the lock: %s", self.id, e)

    def contact(self, is_open: bool) -> None:
        was = self._contact_open
        self._contact_open = is_open
        if was is None:  # first reading at start: a state, not an event
            if is_open:
                self._opened_at = time.monotonic()
                self._set(DoorState.OPEN)
                self._arm_held_open()
            return
        if is_open == was:
            return
        if is_open:
            self._opened()
        else:
            self._closed()

    # --- transitions ---------------------------------------------------------------

    def _opened(self) -> None:
        now = time.monotonic()
        self._opened_at = now
        if self._relock_timer:
            self._relock_timer.cancel()
        if now <= self._exit_until:
            by = "exit"
        elif now <= self._granted_until or self.state is DoorState.UNLOCKED:
            by = "grant"
        elif self.cfg.exit_counting == "door_cycle":
            by = "inside"
            self._count_exit()
        else:
            by = "forced"
            log.warning("door %s forced open", self.id)
            self._record("door.forced", {"door": self.id})
        self._granted_until = 0.0
        self._set(DoorState.OPEN)
        self._record("door.opened", {"door": self.id, "by": by})
        self._arm_held_open()

    def _closed(self) -> None:
        if self._held_timer:
            self._held_timer.cancel()
        open_s = round(time.monotonic() - self._opened_at, 3)
        self._record("door.closed", {"door": self.id, "open_seconds": open_s})
        self._spawn(self._relock("closed"))

    async def _relock(self, why: str) -> None:
        try:
            await self._lock.relock()
        except Exception as e:
            log.error("door %s: relock failed: %s", self.id, e)
            self._record("door.relock_failed", {"door": self.id, "error": str(e)})
            return
        if self._contact_open:
            return  # opened again meanwhile; it will relock when it closes
        self._granted_until = 0.0
        self._set(DoorState.LOCKED)
        self._record("door.locked", {"door": self.id, "why": why})

    def _arm_relock(self, seconds: float) -> None:
        if self._relock_timer:
            self._relock_timer.cancel()
        loop = asyncio.get_running_loop()
        self._relock_timer = loop.call_later(seconds, self._relock_if_unopened)

    def _relock_if_unopened(self) -> None:
        if self.state is DoorState.UNLOCKED:
            self._spawn(self._relock("not_opened"))

    def _arm_held_open(self) -> None:
        if self._held_timer:
            self._held_timer.cancel()
        loop = asyncio.get_running_loop()
        self._held_timer = loop.call_later(self.cfg.held_open_seconds, self._held_open)

    def _held_open(self) -> None:
        if self.state is DoorState.OPEN:
            self._set(DoorState.HELD_OPEN)
            log.warning("door %s held open", self.id)
            self._record("door.held_open", {"door": self.id, "seconds": self.cfg.held_open_seconds})

    def _count_exit(self) -> None:
        self._occupancy[self.id] = max(0, self._occupancy.get(self.id, 0) - 1)

    def _set(self, state: DoorState) -> None:
        if state is not self.state:
            self.state = state
            self._on_change()

    # --- background work -------------------------------------------------------------

    def _record(self, type_: str, data: dict[str, Any]) -> None:
        self._spawn(self._append(type_, data))

    async def _append(self, type_: str, data: dict[str, Any]) -> None:
        try:
            await self._journal.append(type_, data)
        except Exception as e:
            log.error("door %s: could not journal %s: %s", self.id, type_, e)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
