"""Self-checkout: a scanner builds a cart, the hub takes payment, the sale is journaled."""

from __future__ import annotations

from agent.services.base import StoreContext, StoreService


def build(ctx: StoreContext) -> list[StoreService]:
    return []
