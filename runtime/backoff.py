"""Capped exponential backoff, the one way everything here waits before trying again
(a serial port reopening, the broker reconnecting, the relay and order sync retrying
the hub, the hub's workers retrying platforms and ERPs)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """initial_s * factor**step, capped at cap_s; with jitter, "equal jitter": between half
    and all of it, so that stores or devices cut off together (a hub restart, a USB hub
    power-cycling) spread out instead of retrying in lockstep, and none retries sooner
    than half the step."""

    initial_s: float = 0.2
    cap_s: float = 5.0
    factor: float = 2.0
    jitter: bool = True

    def delay(self, step: int, rand: Callable[[], float] = random.random) -> float:
        # min(step, 64) keeps factor**step from overflowing a float.
        base = min(self.cap_s, self.initial_s * self.factor ** min(max(step, 0), 64))
        return base / 2 + rand() * base / 2 if self.jitter else base
