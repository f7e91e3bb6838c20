"""Keeping one MQTT connection alive, for the agent (agent/mqtt/client.py) and the hub
(cloud/bus.py) alike: run a connection until it ends, then retry with capped,
jittered backoff, until told to stop. A bug in one connection attempt is logged and
retried, never allowed to end the supervision (the most common complaint about edge
gateways is a client that silently stopped reconnecting)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

from runtime.backoff import Backoff

log = logging.getLogger(__name__)

STABLE_AFTER_S = 5.0  # a connection that lasted this long resets the backoff

# One connection from connecting to its end: (seconds it was up, or None if it never
# came up; why it ended, or None when it ended because of a stop).
Connection = Callable[[], Awaitable[tuple[float | None, str | None]]]


def reconnect_delay(
    failures: int, lo: float, hi: float, rand: Callable[[], float] = random.random
) -> float:
    """Capped exponential backoff with "equal jitter": between half and all of
    min(hi, lo * 2**failures), so stores cut off together don't reconnect in lockstep."""
    return Backoff(lo, hi).delay(failures, rand)


def describe(e: BaseException) -> str:
    """A one-line reason for a connection error, with its cause."""
    text = str(e) or type(e).__name__
    cause = e.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text}: {cause}"
    if text.endswith("[code:128] Unspecified error"):
        text += " (the connection was closed)"  # what paho reports for a lost socket
    return text


async def supervise(
    connection: Connection, *, stopping: asyncio.Event, delays: tuple[float, float], where: str
) -> None:
    failures = 0
    while not stopping.is_set():
        try:
            up_for, reason = await connection()
        except Exception as e:  # a bug of ours must not end the supervision
            log.error("mqtt: unexpected failure", exc_info=e)
            up_for, reason = None, describe(e)
        if reason is None or stopping.is_set():
            return
        if up_for is not None and up_for >= STABLE_AFTER_S:
            failures = 0
        delay = reconnect_delay(failures, *delays)
        failures += 1
        lost = "lost the broker" if up_for is not None else "cannot connect to the broker"
        log.warning("mqtt: %s %s: %s; retrying in %.2f s", lost, where, reason, delay)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await stopping.wait()
