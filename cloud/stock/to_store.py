"""Catalog changes to the store's agent: the signed `catalog.upsert` command (CONTRACTS 3).

    sender = CatalogSender(lambda: app.get(BUS))
    sender.send("demo-001", [product, ...])     # returns at once
    sender.status("demo-001")                   # the last delivery, for the dashboard

Fire and forget, with retries: products waiting for one store are merged (the latest of
each barcode wins) and go out in commands of up to CHUNK products, one store at a time.
A command not answered within WAIT_REPLY_S is sent again (catalog.upsert is idempotent)
after RETRY_DELAYS_S; a store that is offline gets it from the broker's persistent
session when it comes back, so it is not retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from cloud.bus import BusUnavailable, HubBus
from cloud.db.times import now_text
from cloud.stock.product import Product

log = logging.getLogger("cloud.stock.to_store")

WAIT_REPLY_S = 5.0
RETRY_DELAYS_S = (1.0, 5.0, 20.0)
COMMAND_TTL_S = 600
CHUNK = 200


class CatalogSender:
    def __init__(
        self,
        bus: Callable[[], HubBus | None],
        *,
        wait_reply_s: float = WAIT_REPLY_S,
        retry_delays_s: Sequence[float] = RETRY_DELAYS_S,
    ) -> None:
        self._bus = bus
        self._wait = wait_reply_s
        self._delays = tuple(retry_delays_s)
        self._waiting: dict[str, dict[str, Product]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._status: dict[str, dict[str, Any]] = {}

    def send(self, store: str, products: Sequence[Product]) -> None:
        if not products:
            return
        self._waiting.setdefault(store, {}).update({p.barcode: p for p in products})
        if store not in self._workers:
            task = asyncio.get_running_loop().create_task(self._work(store))
            self._workers[store] = task

    def status(self, store: str) -> dict[str, Any] | None:
        """{at, products, outcome: acked|refused|no_reply|store_offline|unsent, error}"""
        return self._status.get(store)

    async def idle(self) -> None:
        while self._workers:
            await asyncio.gather(*self._workers.values(), return_exceptions=True)

    async def stop(self) -> None:
        tasks = list(self._workers.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _work(self, store: str) -> None:
        try:
            while self._waiting.get(store):
                products = list(self._waiting.pop(store).values())
                for start in range(0, len(products), CHUNK):
                    await self._deliver(store, products[start : start + CHUNK])
        except Exception:
            log.exception("catalog delivery to %s failed", store)
        finally:
            del self._workers[store]

    async def _deliver(self, store: str, products: list[Product]) -> None:
        args = {"products": [p.to_agent() for p in products]}
        for attempt in range(len(self._delays) + 1):
            bus = self._bus()
            if bus is None:
                self._note(store, products, "unsent", "no MQTT bus in this hub")
                return
            error: str | None
            offline = bus.store_online(store) is False
            try:
                reply = await bus.send_command(
                    store,
                    "catalog.upsert",
                    args,
                    ttl=COMMAND_TTL_S,
                    wait_reply=None if offline else self._wait,
                )
            except BusUnavailable as e:
                reply, outcome, error = None, "unsent", str(e)
            else:
                outcome, error = ("store_offline" if offline else "no_reply"), None
            if reply is not None:
                ok = reply.get("ok") is True
                error = None if ok else str(reply.get("error"))[:500]
                self._note(store, products, "acked" if ok else "refused", error)
                if not ok:
                    log.warning("store %s refused catalog.upsert: %s", store, error)
                return
            self._note(store, products, outcome, error)
            if outcome == "store_offline" or attempt >= len(self._delays):
                return
            await asyncio.sleep(self._delays[attempt])

    def _note(self, store: str, products: list[Product], outcome: str, error: str | None) -> None:
        self._status[store] = {
            "at": now_text(),
            "products": len(products),
            "outcome": outcome,
            "error": error,
        }
