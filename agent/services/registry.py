"""Which store services exist: one line per module, imported when the store is built.

Each module has `build(ctx: StoreContext) -> list[StoreService]`, returning nothing when
the config has none of its hardware. Adding a kind of store hardware is one service
module plus one line here (and its driver in agent/devices/registry.py).
"""

from __future__ import annotations

import importlib

from agent.services.base import StoreContext, StoreService

SERVICES: tuple[str, ...] = (
    "agent.services.printing",
    "agent.services.lockers",
    "agent.services.vending",
    "agent.services.checkout",
)


def build_services(ctx: StoreContext) -> list[StoreService]:
    out: list[StoreService] = []
    for name in SERVICES:
        out.extend(importlib.import_module(name).build(ctx))
    return out
