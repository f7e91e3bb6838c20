"""Escalating pauses against guessing: the pickup-code limit of a door, as pure functions.

Wrong codes at a door make a streak. The streak's `attempts`-th wrong code starts a pause
of `pause_s`, during which no code is even looked up. After that the tolerance is spent:
each further wrong code starts the next pause, twice as long as the last, up to
`max_pause_s`. A streak ends, and everything is forgotten, with a good code at the door,
or after `reset_after_s` with no wrong code (counted from the end of the last pause).

Why a streak and not "N per minute": a limit per window lets a patient guesser make
N-1 guesses in every window forever (5,760 a day at 4 a minute). Counting the streak
bounds a guesser to `attempts` guesses and then one per pause: about 35 a day at a door
with the defaults (5, 1 min doubling to 1 h), each pause journaled and paged, or about
20 a day for one who waits out `reset_after_s` (6 h) each time. A courier who mistypes
five times waits a minute, and the right code then clears the streak.

The state is a small immutable value, kept by the door service and written to the
journal (as JSON) in the same transaction as the decision that changed it, so a restart
resumes the pause and the streak. Times are the agent's clock (epoch seconds, never
running backwards: agent/clock.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    attempts: int = 5
    pause_s: float = 60.0
    max_pause_s: float = 3600.0
    reset_after_s: float = 6 * 3600.0

    def pause_for(self, level: int) -> float:
        """The length of a streak's pause number `level` (0 = the first)."""
        return min(self.max_pause_s, self.pause_s * 2.0 ** min(level, 32))


@dataclass(frozen=True, slots=True)
class Lockout:
    """Where one door stands in its streak of wrong codes."""

    wrong: int = 0  # wrong codes since the streak began or its last pause
    total: int = 0  # wrong codes in the whole streak (told in the pause's event)
    level: int = 0  # pauses in this streak so far
    until: float = 0.0  # paused until (0: no pause in this streak)
    last: float = 0.0  # time of the last wrong code

    @property
    def clear(self) -> bool:
        return self == CLEAR

    def paused(self, now: float) -> bool:
        return now < self.until

    def to_json(self) -> dict[str, Any]:
        return {
            "wrong": self.wrong,
            "total": self.total,
            "level": self.level,
            "until": self.until,
            "last": self.last,
        }

    @classmethod
    def from_json(cls, data: Any) -> Lockout:
        """A saved state; ValueError saying what is wrong with it."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a lockout state is an object, not {data!r}")
        counts = [data.get(k, 0) for k in ("wrong", "total", "level")]
        if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
            raise ValueError(f"wrong, total and level must be counts, not {counts!r}")
        times = [data.get(k, 0.0) for k in ("until", "last")]
        if not all(isinstance(t, int | float) and not isinstance(t, bool) for t in times):
            raise ValueError(f"until and last must be times, not {times!r}")
        return cls(*counts, *(float(t) for t in times))


CLEAR = Lockout()


@dataclass(frozen=True, slots=True)
class Failed:
    """What one wrong code did: the new state, and the pause it started (if any)."""

    state: Lockout
    pause_s: float | None  # a pause started now, this long


def forget_if_quiet(state: Lockout, policy: LockoutPolicy, now: float) -> Lockout:
    """The streak is over after `reset_after_s` with no wrong code and no pause."""
    if state.clear or state.paused(now):
        return state
    if now - max(state.last, state.until) >= policy.reset_after_s:
        return CLEAR
    return state


def record_failure(state: Lockout, policy: LockoutPolicy, now: float) -> Failed:
    """A wrong code was looked up at `now` (the caller checked that no pause is on)."""
    state = forget_if_quiet(state, policy, now)
    wrong, total = state.wrong + 1, state.total + 1
    # After a pause the streak's tolerance is spent: one wrong code starts the next one.
    tolerated = policy.attempts if state.level == 0 else 1
    if wrong < tolerated:
        return Failed(Lockout(wrong, total, state.level, state.until, now), None)
    pause = policy.pause_for(state.level)
    return Failed(Lockout(0, total, state.level + 1, now + pause, now), pause)
