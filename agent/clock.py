"""The agent's clock: what time the agent believes, and on whose word.

A Raspberry Pi has no battery-backed clock. It boots at the time fake-hwclock saved (or
in 1970) and systemd-timesyncd steps it when an NTP server answers; NTP is unsigned, so
anyone on the store's network can answer instead. Passes and commands are valid for a
time window, so whoever moves the agent's clock decides which of them open the door:
backward revives expired passes, forward expires every pass (and, saved as the last known
good time, keeps the store locked after every reboot).

What the clock believes (docs/architecture.md "Durability and time" says why):

- Time only ever moves forward: `now()` never returns less than it returned before, nor
  less than the time saved in the journal (`restore`).
- The *confirmed* time C is the latest time the agent has proof of: the saved time at a
  boot, and every hub-signed time (`observe_signed_time`: a verified token's `iat` proves
  the real time is at least that). Between proofs C runs on the monotonic clock.
- The wall clock is followed while it stays between a little behind the agent's own time
  (`jump_threshold`) and `max_unconfirmed` seconds ahead of C. Set further back, it is
  refused; further ahead, the jump is *held*: the clock runs on, monotonically, at most
  `max_unconfirmed` ahead of C, until a hub-signed time within `max_unconfirmed` of the
  wall clock confirms it. NTP alone therefore moves the agent's time by at most
  `max_unconfirmed` seconds, however often it is spoofed.
- A hub-signed time is believed when it is at most `max_unconfirmed` ahead of the
  agent's time or of the wall clock. Further ahead it is believed only while the clock is
  *unsettled*: after a reboot (or on a fresh journal), when the agent cannot know how
  long it was off; the first hub-signed time at least as new as the saved time settles it.
- While unsettled after a reboot, tokens signed before the saved time are in doubt
  (`doubts_before()`): they may have expired while the Pi was off, so the verifier
  refuses them until the hub's time settles the clock.
- A restart of the agent alone (same boot: the monotonic clock ran on) is no reboot: the
  confirmed time carries on exactly (`ClockAnchor`, kept in the journal).

Every jump is recorded; `take_jumps()` hands them out once (the journal turns them into
`clock.jumped` events), and `take_anchor()` hands out what must survive a restart when
it changed. The clock is thread-safe.
"""

from __future__ import annotations

import functools
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")
DEFAULT_MAX_UNCONFIRMED = 60.0

JumpStatus = Literal["accepted", "held", "confirmed", "refused", "advanced"]


def format_rfc3339(t: float) -> str:
    """Epoch seconds -> RFC 3339 UTC with milliseconds: 2026-11-23T23:56:05.123Z."""
    ms = int(t * 1000)  # floor for every time after 1970, so .999 never rounds up a second
    secs, frac = divmod(ms, 1000)
    return _format_second(secs) + f".{frac:03d}Z"


@functools.lru_cache(maxsize=4)
def _format_second(secs: int) -> str:
    # A burst of events shares a handful of seconds: formatting each one once is enough.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))


def read_boot_id() -> str | None:
    """The kernel's id of this boot (changes at every boot); None where there is none."""
    try:
        return BOOT_ID_FILE.read_text(encoding="ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


@dataclass(frozen=True, slots=True)
class ClockJump:
    """The agent's time moved away from where the monotonic clock said it would be, or
    the wall clock tried to move it.

    status: `accepted` (a forward step within what is confirmed), `held` (a forward jump
    the agent does not follow until it is confirmed), `confirmed` (a held jump followed
    once a hub-signed time agreed with it), `refused` (a backward jump), `advanced` (the
    agent's time moved up to a hub-signed time, the wall clock being behind)."""

    before: float  # the agent's time just before (epoch seconds)
    wall: float  # what the wall clock said; for `advanced`, the hub-signed time
    direction: Literal["forward", "backward"]
    accepted: bool
    status: JumpStatus = "accepted"
    source: str | None = None  # what signed the time that confirmed or advanced it

    def to_data(self) -> dict[str, Any]:
        """The `clock.jumped` event's data."""
        data: dict[str, Any] = {
            "from": format_rfc3339(self.before),
            "to": format_rfc3339(self.wall),
            "direction": self.direction,
            "accepted": self.accepted,
            "status": self.status,
        }
        if self.source is not None:
            data["source"] = self.source
        return data


@dataclass(frozen=True, slots=True)
class ClockAnchor:
    """What the clock must remember across a restart of the agent (not of the Pi): the
    confirmed time at a monotonic reading of this boot, and whether it is settled."""

    boot_id: str | None
    confirmed: float  # the confirmed time...
    mono: float  # ...at this monotonic reading
    settle_at: float | None  # unsettled: a hub-signed time this new settles it
    rebooted: bool  # unsettled because of a reboot: tokens signed before settle_at in doubt

    def to_json(self) -> str:
        return json.dumps(
            {
                "boot_id": self.boot_id,
                "confirmed": self.confirmed,
                "mono": self.mono,
                "settle_at": self.settle_at,
                "rebooted": self.rebooted,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | None) -> ClockAnchor | None:
        """The anchor saved as `text`; None when there is none or it is unreadable (the
        clock then treats the start as a reboot, which doubts more, never less)."""
        if not text:
            return None
        try:
            d = json.loads(text)
            anchor = cls(
                d["boot_id"] if isinstance(d["boot_id"], str) else None,
                _finite(d["confirmed"]),
                _finite(d["mono"]),
                None if d["settle_at"] is None else _finite(d["settle_at"]),
                d["rebooted"] is True,
            )
        except (ValueError, TypeError, KeyError):
            return None
        return anchor


def _finite(v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ValueError(f"not a finite number: {v!r}")
    return float(v)


class Clock:
    def __init__(
        self,
        last_known_good: float | None = None,
        *,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        jump_threshold: float = 2.0,
        max_unconfirmed: float = DEFAULT_MAX_UNCONFIRMED,
        boot_id: Callable[[], str | None] = read_boot_id,
    ) -> None:
        self._wall = wall
        self._mono = mono
        self._threshold = jump_threshold
        self.max_unconfirmed = max_unconfirmed
        self._boot_id = boot_id()
        self._lock = threading.Lock()
        self._jumps: list[ClockJump] = []
        w, m = wall(), mono()
        # The agent's time is _base + (mono() - _base_mono): following the wall clock
        # means moving this anchor to the wall clock's reading.
        self._base, self._base_mono = w, m
        # The confirmed time, on the same terms. With nothing saved to go on, the first
        # reading of the wall clock is all there is: taken on trust, but unsettled.
        self._conf, self._conf_mono = w, m
        self._settle_at: float | None = w
        self._rebooted = False
        self._last = float("-inf")
        # Where the wall clock stood against the monotonic one when a refused or held
        # jump was last recorded: a wall clock that stays off is recorded once, not on
        # every reading, and again only when it is stepped again.
        self._refused_drift: float | None = None
        self._held_drift: float | None = None
        self._saved: ClockAnchor | None = None
        self._anchor_changed = True
        if last_known_good is not None:
            self.restore(last_known_good)

    # --- what the journal keeps across restarts -------------------------------------

    def restore(self, last_known_good: float | None, anchor: ClockAnchor | None = None) -> None:
        """Resume from what the journal saved: the agent's last time and the anchor.

        Same boot (the anchor's boot id, a monotonic clock that has not gone back): the
        confirmed time carries on where it was. Otherwise the Pi rebooted: the saved time
        is all the agent knows, the clock is unsettled, and tokens signed before it are
        in doubt until a hub-signed time at least as new arrives."""
        with self._lock:
            m = self._mono()
            if (
                anchor is not None
                and self._boot_id is not None
                and anchor.boot_id == self._boot_id
                and m >= anchor.mono
            ):
                confirmed = anchor.confirmed + (m - anchor.mono)
                lower = max(confirmed, -math.inf if last_known_good is None else last_known_good)
                self._settle_at, self._rebooted = anchor.settle_at, anchor.rebooted
            elif last_known_good is not None:
                confirmed = lower = last_known_good
                self._settle_at, self._rebooted = last_known_good, True
            else:
                return
            self._conf, self._conf_mono = confirmed, m
            self._base, self._base_mono = lower, m
            self._refused_drift = self._held_drift = None
            self._anchor_changed = True
            # The agent was off: a wall clock ahead by that much is no jump (quiet); one
            # behind the saved time, or ahead of what is confirmed, is recorded.
            self._read(m, quiet=True)

    def anchor(self) -> ClockAnchor:
        with self._lock:
            return self._anchor()

    def take_anchor(self) -> ClockAnchor | None:
        """The anchor, when it changed enough since the last call to be worth saving."""
        if not self._anchor_changed:  # the common case, checked on every journal append
            return None
        with self._lock:
            self._anchor_changed = False
            a, saved = self._anchor(), self._saved
            if (
                saved is not None
                and (a.boot_id, a.settle_at, a.rebooted)
                == (saved.boot_id, saved.settle_at, saved.rebooted)
                and abs((a.confirmed - a.mono) - (saved.confirmed - saved.mono)) <= self._threshold
            ):
                return None
            self._saved = a
            return a

    def _anchor(self) -> ClockAnchor:
        return ClockAnchor(
            self._boot_id, self._conf, self._conf_mono, self._settle_at, self._rebooted
        )

    # --- reading --------------------------------------------------------------------

    def now(self) -> float:
        """UTC epoch seconds; never less than any earlier reading."""
        with self._lock:
            return self._read(self._mono())

    def now_rfc3339(self) -> str:
        return format_rfc3339(self.now())

    def confirmed(self) -> float:
        """The latest time the agent has proof of (saved or hub-signed), run on since."""
        with self._lock:
            return self._conf + (self._mono() - self._conf_mono)

    def doubts_before(self) -> float | None:
        """After a reboot, until the hub's signed time settles the clock: the saved time
        the agent resumed from. A token signed before it may have expired while the Pi was
        off, however the agent's own time reads. None when settled."""
        with self._lock:
            return self._settle_at if self._rebooted else None

    def observe_signed_time(self, t: float, source: str) -> bool:
        """A time the hub signed (a verified token's `iat`): the real time is at least
        `t`. Returns whether the clock believed it (see the module's rules); a time not
        believed changes nothing. `source` names the token's kind for the journal:
        "pass", "command", "order_sync"..."""
        if not math.isfinite(t):
            return False
        with self._lock:
            m = self._mono()
            e = max(self._base + (m - self._base_mono), self._last)
            if not (
                t <= e + self.max_unconfirmed
                or abs(self._wall() - t) <= self.max_unconfirmed
                or self._settle_at is not None
            ):
                return False
            if t > self._conf + (m - self._conf_mono):
                self._conf, self._conf_mono = t, m
                self._anchor_changed = True
            if self._settle_at is not None and t >= self._settle_at:
                self._settle_at, self._rebooted = None, False
                self._anchor_changed = True
            if t > e:
                self._base, self._base_mono = t, m
            held, noticed = self._held_drift is not None, len(self._jumps)
            now = self._read(m, quiet=True)
            if now > e + self._threshold:
                status: JumpStatus = (
                    "confirmed" if held and self._held_drift is None else "advanced"
                )
                # Before what the wall clock did in the same reading (e.g. it is behind now).
                self._jumps.insert(noticed, ClockJump(e, now, "forward", True, status, source))
            return True

    def take_jumps(self) -> list[ClockJump]:
        """The jumps noticed since the last call, oldest first."""
        if not self._jumps:  # the common case, checked on every journal append
            return []
        with self._lock:
            jumps, self._jumps = self._jumps, []
        return jumps

    def _read(self, m: float, *, quiet: bool = False) -> float:
        """The agent's time at monotonic reading `m`, after looking at the wall clock.
        `quiet`: the caller records the forward move itself (or it is no jump at all)."""
        expected = self._base + (m - self._base_mono)
        ceiling = self._conf + (m - self._conf_mono) + self.max_unconfirmed
        w = self._wall()
        drift = w - m  # moves only when the wall clock is stepped
        if w < expected - self._threshold:
            if self._refused_drift is None or abs(drift - self._refused_drift) > self._threshold:
                self._jumps.append(ClockJump(expected, w, "backward", False, "refused"))
                self._refused_drift = drift
            self._held_drift = None
            t = expected
        elif w <= ceiling:
            if w > expected + self._threshold and not quiet:
                self._jumps.append(ClockJump(expected, w, "forward", True, "accepted"))
            self._base, self._base_mono = w, m
            self._refused_drift = self._held_drift = None
            t = w
        else:
            # Ahead of what is confirmed: follow the wall clock only as far as that allows.
            t = max(expected, ceiling)
            if w > t + self._threshold and (
                self._held_drift is None or abs(drift - self._held_drift) > self._threshold
            ):
                self._jumps.append(ClockJump(t, w, "forward", False, "held"))
                self._held_drift = drift
            self._base, self._base_mono = t, m
            self._refused_drift = None
        if t < self._last:
            t = self._last  # a small step back (within the threshold) holds still instead
        self._last = t
        return t
