"""Order commands to one store, merged while they wait for their turn on the bus.

    batches = CommandBatches(bus, ttl=600)
    batch = batches.join("demo-001", "orders.upsert", {"orders": [order]}, wait_reply=5.0)
    batch.jti                      # known at once: the delivery record names it
    sent = await batch.sent()      # Sent(reply=..., unavailable=None), for every member

A lunch rush is dozens of orders to a store within a millisecond, and each command costs
the hub a signature, a publish and its acknowledgement, and the store a verification and
a journal transaction. So the changes that join in the same turn of the event loop go
out as one command: `orders.upsert {orders: [...]}` or `orders.cancel {ids: [...]}`,
which the store applies in one transaction (CONTRACTS section 3). A lone order waits for
nobody: its command is sent on the loop's next turn.

Every member hears the same outcome. The store refuses a command as a whole, so a member
of a refused batch should be sent again alone (`alone=True`), to find out whether it was
the order the store refused or only its neighbour.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from cloud.bus import BusUnavailable, HubBus

# The list each mergeable command carries; other commands are always sent alone.
MERGED_LIST = {"orders.upsert": "orders", "orders.cancel": "ids"}
# ~0.5 kB an order: keeps a command well under the agent's and the broker's limits.
MAX_PER_COMMAND = 50


@dataclass(frozen=True, slots=True)
class Sent:
    """The store's reply (None: none came within the wait), or why nothing was sent."""

    reply: dict[str, Any] | None
    unavailable: str | None = None


@dataclass(slots=True)
class Batch:
    store: str
    cmd: str
    wait_reply: float | None
    jti: str = field(default_factory=lambda: uuid.uuid4().hex)
    items: list[Any] = field(default_factory=list)
    args: dict[str, Any] = field(default_factory=dict)
    done: asyncio.Future[Sent] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def size(self) -> int:
        return max(1, len(self.items))

    async def sent(self) -> Sent:
        # Shielded: a member that gives up (cancelled) leaves the others' send alone.
        return await asyncio.shield(self.done)


class CommandBatches:
    def __init__(self, bus: HubBus, *, ttl: int, max_per_command: int = MAX_PER_COMMAND) -> None:
        self.bus = bus
        self._ttl = ttl
        self._max = max_per_command
        self._open: dict[tuple[str, str, float | None], Batch] = {}
        self._sending: set[asyncio.Task[None]] = set()

    def join(
        self,
        store: str,
        cmd: str,
        args: dict[str, Any],
        *,
        wait_reply: float | None,
        alone: bool = False,
    ) -> Batch:
        """The batch that carries `args` (merged into the batch's list for a mergeable
        command); it is sent on the loop's next turn."""
        list_key = MERGED_LIST.get(cmd)
        key = (store, cmd, wait_reply)
        batch = None if alone or list_key is None else self._open.get(key)
        if batch is None or len(batch.items) >= self._max:
            batch = Batch(store, cmd, wait_reply, args=dict(args))
            if list_key is not None and not alone:
                self._open[key] = batch
            task = asyncio.get_running_loop().create_task(self._send(key, batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        if list_key is not None:
            batch.items.extend(args.get(list_key, ()))
        return batch

    async def stop(self) -> None:
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)

    async def _send(self, key: tuple[str, str, float | None], batch: Batch) -> None:
        if self._open.get(key) is batch:
            del self._open[key]  # from here on, joiners start the next batch
        list_key = MERGED_LIST.get(batch.cmd)
        args = batch.args if list_key is None else {**batch.args, list_key: batch.items}
        try:
            reply = await self.bus.send_command(
                batch.store,
                batch.cmd,
                args,
                ttl=self._ttl,
                wait_reply=batch.wait_reply,
                jti=batch.jti,
            )
        except BusUnavailable as e:
            batch.done.set_result(Sent(None, str(e)))
        except BaseException as e:
            batch.done.set_result(Sent(None, f"not sent: {type(e).__name__}"))
            raise
        else:
            batch.done.set_result(Sent(reply))
