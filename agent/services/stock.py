"""The store's own stock count per barcode, moved only together with its event.

Every physical movement the agent makes (a vend, a locker compartment taken, a
self-checkout sale) is one `stock.changed` event {barcode, delta, reason, qty_after,
source} written in the same transaction as the new count, so the count and the events
never disagree, also across a power cut. The hub's ledger is the truth across channels;
this count is what the store knows offline (and what `qty_after` reports). Courier
pickups of platform orders are booked by the hub from the order itself, not here, so
a sale is never counted twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.journal import Journal, PutSetting
from agent.journal.ops import Op
from agent.model.events import Event

SETTING_PREFIX = "stock/"
REASONS = frozenset({"sale", "vend", "locker", "refund", "restock", "adjust", "manual"})


@dataclass(frozen=True, slots=True)
class StockMove:
    barcode: str
    delta: int
    reason: str
    source: str  # what caused it: a sale id, an order id, a command's jti...
    extra: Mapping[str, Any] | None = None  # e.g. {"machine": "vending-1", "slot": 3}

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"stock reason {self.reason!r} is not one of {sorted(REASONS)}")


class LocalStock:
    def __init__(self, journal: Journal, settings: Mapping[str, Any]) -> None:
        self._journal = journal
        self._moving = asyncio.Lock()
        self.counts: dict[str, int] = {
            k.removeprefix(SETTING_PREFIX): int(v)
            for k, v in settings.items()
            if k.startswith(SETTING_PREFIX)
        }

    def qty(self, barcode: str) -> int | None:
        """The count, or None when this store never counted that barcode."""
        return self.counts.get(barcode)

    def plan(self, moves: Sequence[StockMove]) -> tuple[list[tuple[str, dict[str, Any]]], list]:
        """The `stock.changed` events and count updates for `moves` (used by `move`)."""
        counts = dict(self.counts)
        events: list[tuple[str, dict[str, Any]]] = []
        for m in moves:
            # A barcode the store never counted (no stock-take, no `stock` in its
            # catalog.upsert) has no known count: qty_after is null, never a made-up -1.
            before = counts.get(m.barcode)
            after = None if before is None else before + m.delta
            if after is not None:
                counts[m.barcode] = after
            data = {
                "barcode": m.barcode,
                "delta": m.delta,
                "reason": m.reason,
                "qty_after": after,
                "source": m.source,
                **(m.extra or {}),
            }
            events.append(("stock.changed", data))
        ops = [
            PutSetting(SETTING_PREFIX + b, counts[b])
            for b in {m.barcode for m in moves}
            if b in counts
        ]
        return events, ops

    def commit(self, moves: Sequence[StockMove]) -> None:
        for m in moves:
            if m.barcode in self.counts:
                self.counts[m.barcode] += m.delta

    async def move(
        self,
        moves: Sequence[StockMove],
        *,
        with_events: Sequence[tuple[str, dict[str, Any]]] = (),
        ops: Sequence[Op] = (),
    ) -> list[Event]:
        """Journal `with_events`, the moves' `stock.changed` events and `ops` in one
        transaction, then update the counts. Raises JournalError (nothing moved).

        Moves are taken one at a time: a vend and a checkout selling the same barcode at
        once must not both compute their qty_after from the same count."""
        async with self._moving:
            events, count_ops = self.plan(moves)
            written = await self._journal.append_many(
                [*with_events, *events], ops=[*count_ops, *ops]
            )
            self.commit(moves)
        return written

    async def set_counts(self, counts: Mapping[str, int]) -> None:
        """Take counts as given (a stock-take, or the hub's numbers) without an event."""
        await self._journal.apply(
            [PutSetting(SETTING_PREFIX + b, int(q)) for b, q in counts.items()]
        )
        self.counts.update({b: int(q) for b, q in counts.items()})
