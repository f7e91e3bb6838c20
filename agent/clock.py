"""The agent's clock: wall time that never runs backwards.

A Raspberry Pi has no battery-backed clock, so it often boots believing it is 1970 (or
whatever time it last saved) until NTP syncs, and someone with a shell can set the time
back to replay an expired pass. The agent therefore never trusts a wall clock that is
earlier than a time it has already seen:

- It follows the wall clock while wall and monotonic clocks agree (within
  `jump_threshold` seconds; NTP slews smaller errors away on its own).
- A forward jump (NTP finally syncing a Pi that booted in 1970) is accepted.
- A backward jump is refused: the clock keeps running from where it was on the monotonic
  clock until the wall clock catches up.
- `restore(last_known_good)` (the journal does it on open with the time it saved) keeps
  the clock at or after that time across reboots.
- Whatever happens, `now()` never returns less than it returned before.

Every jump, accepted or refused, is recorded; `take_jumps()` hands them out once (the
journal turns them into `clock.jumped` events). The clock is thread-safe.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal


def format_rfc3339(t: float) -> str:
    """Epoch seconds -> RFC 3339 UTC with milliseconds: 2026-11-23T23:56:05.123Z."""
    ms = int(t * 1000)  # floor for every time after 1970, so .999 never rounds up a second
    secs, frac = divmod(ms, 1000)
    return _format_second(secs) + f".{frac:03d}Z"


@functools.lru_cache(maxsize=4)
def _format_second(secs: int) -> str:
    # A burst of events shares a handful of seconds: formatting each one once is enough.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))


@dataclass(frozen=True, slots=True)
class ClockJump:
    """The wall clock moved away from where the agent's clock expected it."""

    before: float  # what the agent's clock read just before (epoch seconds)
    wall: float  # what the wall clock said instead
    direction: Literal["forward", "backward"]
    accepted: bool

    def to_data(self) -> dict[str, Any]:
        """The `clock.jumped` event's data."""
        return {
            "from": format_rfc3339(self.before),
            "to": format_rfc3339(self.wall),
            "direction": self.direction,
            "accepted": self.accepted,
        }


class Clock:
    def __init__(
        self,
        last_known_good: float | None = None,
        *,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        jump_threshold: float = 2.0,
    ) -> None:
        self._wall = wall
        self._mono = mono
        self._threshold = jump_threshold
        self._lock = threading.Lock()
        self._jumps: list[ClockJump] = []
        # The agent's time is _base + (mono() - _base_mono); following the wall clock
        # means moving this anchor to the wall clock's reading.
        self._base = wall()
        self._base_mono = mono()
        self._last = float("-inf")
        # How far behind the wall clock was when we last recorded a refused jump, so a
        # wall clock that stays behind is recorded once and not on every reading.
        self._refused_offset: float | None = None
        if last_known_good is not None:
            self.restore(last_known_good)

    def restore(self, last_known_good: float) -> None:
        """Never run earlier than `last_known_good` (a time this agent has already seen)."""
        with self._lock:
            m = self._mono()
            if last_known_good > self._base + (m - self._base_mono):
                self._base, self._base_mono = last_known_good, m
            self._read(m)

    def now(self) -> float:
        """UTC epoch seconds; never less than any earlier reading."""
        with self._lock:
            return self._read(self._mono())

    def now_rfc3339(self) -> str:
        return format_rfc3339(self.now())

    def take_jumps(self) -> list[ClockJump]:
        """The jumps noticed by readings (now()) since the last call, oldest first."""
        if not self._jumps:  # the common case, checked on every journal append
            return []
        with self._lock:
            jumps, self._jumps = self._jumps, []
        return jumps

    def _read(self, m: float) -> float:
        expected = self._base + (m - self._base_mono)
        w = self._wall()
        offset = w - expected
        if offset < -self._threshold:
            if self._refused_offset is None or abs(offset - self._refused_offset) > self._threshold:
                self._jumps.append(ClockJump(expected, w, "backward", accepted=False))
                self._refused_offset = offset
            t = expected
        else:
            if offset > self._threshold:
                self._jumps.append(ClockJump(expected, w, "forward", accepted=True))
            self._base, self._base_mono = w, m
            self._refused_offset = None
            t = w
        if t < self._last:
            t = self._last  # a small step back (within the threshold) holds still instead
        self._last = t
        return t
