"""The store's orders, held locally so couriers get in while the store is offline.

Orders arrive by remote ops (`orders.upsert` / `orders.cancel`, CONTRACTS section 3) or
this internal API; each change is written through the journal before it is visible.
Pickup codes are looked up in memory (a scan must not wait for disk).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from agent.journal import Journal, PutOrder, SetOrderStatus

PLATFORMS = frozenset({"meituan", "eleme", "jddj", "douyin", "local"})
STATUSES = frozenset({"pending", "picked_up", "cancelled"})


class OrderError(ValueError):
    """An order that does not have the contract's shape; the message says which field."""


def validate_order(raw: Mapping[str, Any], *, code_length: int) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise OrderError("an order must be an object")
    order = copy.deepcopy(dict(raw))
    oid = order.get("id")
    if not isinstance(oid, str) or not oid:
        raise OrderError("order.id must be a non-empty string")
    if order.get("platform", "local") not in PLATFORMS:
        raise OrderError(f"order {oid}: platform must be one of {sorted(PLATFORMS)}")
    order.setdefault("platform", "local")
    status = order.setdefault("status", "pending")
    if status not in STATUSES:
        raise OrderError(f"order {oid}: status must be one of {sorted(STATUSES)}")
    code = order.get("pickup_code")
    if code is not None and (
        not isinstance(code, str) or not code.isdigit() or len(code) != code_length
    ):
        raise OrderError(f"order {oid}: pickup_code must be {code_length} digits")
    items = order.setdefault("items", [])
    if not isinstance(items, list):
        raise OrderError(f"order {oid}: items must be a list")
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or not isinstance(item.get("qty", 1), int):
            raise OrderError(f"order {oid}: items[{i}] must be an object with an integer qty")
    return order


class PendingOrders:
    def __init__(
        self, journal: Journal, orders: Mapping[str, Mapping[str, Any]], *, code_length: int
    ) -> None:
        self._journal = journal
        self._code_length = code_length
        self.by_id: dict[str, dict[str, Any]] = {k: dict(v) for k, v in orders.items()}
        self.by_code: dict[str, str] = {}
        # Called with the orders of each upsert once they are journaled (store services:
        # a pick slip to print, a compartment to open). Must not block.
        self.listeners: list[Callable[[list[dict[str, Any]]], None]] = []
        for order in self.by_id.values():
            self._index(order)

    def _index(self, order: Mapping[str, Any]) -> None:
        """A code points at its pending order; once none is pending, at the last one seen,
        so a rescan says `already_picked_up` or `cancelled` rather than `unknown_order`."""
        code = order.get("pickup_code")
        if not code:
            return
        current = self.by_id.get(self.by_code.get(code, ""))
        if current is None or order["status"] == "pending" or current["status"] != "pending":
            self.by_code[code] = order["id"]

    async def upsert(self, raw_orders: Iterable[Mapping[str, Any]]) -> list[str]:
        """Add or update orders. A pickup that happened here wins: the hub may send an
        update before it has heard of the pickup, and a picked-up order must never be
        pickable again."""
        orders = [validate_order(o, code_length=self._code_length) for o in raw_orders]
        for o in orders:
            if self.by_id.get(o["id"], {}).get("status") == "picked_up":
                o["status"] = "picked_up"
        await self._journal.apply([PutOrder(o) for o in orders])
        for o in orders:
            self.by_id[o["id"]] = o
            self._index(o)
        for listener in self.listeners:
            listener(copy.deepcopy(orders))
        return [o["id"] for o in orders]

    async def cancel(self, ids: Iterable[str]) -> list[str]:
        """Cancel pending orders; returns the ids that were cancelled (unknown or
        already picked-up ones are left as they are)."""
        todo = [i for i in ids if self.by_id.get(i, {}).get("status") == "pending"]
        await self._journal.apply([SetOrderStatus(i, "cancelled") for i in todo])
        for i in todo:
            self.by_id[i]["status"] = "cancelled"
        return todo

    def set_status_in_memory(self, ids: Iterable[str], status: str) -> None:
        """Reserve orders while a door is being opened for them (undone on failure)."""
        for i in ids:
            self.by_id[i]["status"] = status
