"""Receipt and label printing: pick slips on order arrival, receipts, labels, the print command."""

from __future__ import annotations

from agent.services.base import StoreContext, StoreService


def build(ctx: StoreContext) -> list[StoreService]:
    return []
