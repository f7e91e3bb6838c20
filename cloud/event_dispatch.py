"""New events from the stores, handed to every feature that follows them.

The events API publishes each stored batch's new events (never duplicates) before the
agent gets its answer; the composition root (cloud/root.py) subscribes the features
(stock feed, ERP sync, pickups, alerts). A subscriber hands slow work to the
background. One failing subscriber is logged and does not stop the others: the events
are stored, and the agent must not send them again for this.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from cloud.envelope import Envelope

log = logging.getLogger("cloud.events")

EventHandler = Callable[[str, list[Envelope]], Awaitable[None]]


class EventDispatcher:
    def __init__(self) -> None:
        self._subscribers: list[tuple[str, EventHandler]] = []

    def subscribe(self, name: str, handler: EventHandler) -> None:
        self._subscribers.append((name, handler))

    @property
    def subscribers(self) -> list[str]:
        return [name for name, _ in self._subscribers]

    async def publish(self, store: str, events: list[Envelope]) -> None:
        if not events:
            return
        for name, handler in list(self._subscribers):
            try:
                await handler(store, events)
            except Exception:
                log.exception(
                    "an event subscriber failed",
                    extra={"subscriber": name, "store": store, "events": len(events)},
                )
