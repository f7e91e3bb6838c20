"""Locker cabinets and hotel boxes: compartments on the lock bus, locker.open, paid orders."""

from __future__ import annotations

from agent.services.base import StoreContext, StoreService


def build(ctx: StoreContext) -> list[StoreService]:
    return []
