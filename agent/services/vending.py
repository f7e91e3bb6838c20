"""Vending machines over the VMC protocol: the vend command, paid orders, faults and refunds."""

from __future__ import annotations

from agent.services.base import StoreContext, StoreService


def build(ctx: StoreContext) -> list[StoreService]:
    return []
