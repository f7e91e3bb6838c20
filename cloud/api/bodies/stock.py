"""A store's stock: quantities, the ledger, movements by hand, the platforms' pushes."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from cloud.api.bodies.base import Body, Reply, Timestamp

HAND_REASONS = ("restock", "adjust", "manual")


class Movement(Body):
    """Either `delta` (a movement) or `qty` (a count: the ledger books the difference).
    The same `key` books nothing the second time."""

    reason: Literal["restock", "adjust", "manual"] = "manual"
    key: str | None = Field(default=None, min_length=1, max_length=100)
    note: str = ""
    delta: int | None = None
    qty: int | None = None
    messages: ClassVar[dict[str, str]] = {
        "reason": f"reason must be one of {', '.join(HAND_REASONS)}",
        "key": "key must be text of 1-100 characters",
        "note": "note must be text",
        "delta": "delta and qty are whole numbers of units",
        "qty": "delta and qty are whole numbers of units",
    }

    @model_validator(mode="after")
    def _one_of(self) -> Movement:
        given = {"delta", "qty"} & self.model_fields_set
        if len(given) != 1:
            raise ValueError('give either "delta" (a movement) or "qty" (a count)')
        if self.delta is None and self.qty is None:
            raise ValueError("delta and qty are whole numbers of units")
        return self


class StockEntry(Reply):
    """One movement of the stock ledger."""

    id: int
    store: str
    barcode: str
    delta: int
    reason: str = Field(examples=["sale", "pickup", "restock"])
    source: str = Field(description="What caused it; booked once.")
    qty_after: int
    version: int
    at: Timestamp
    note: str
    ref: str = Field(description="The order it belongs to, or empty.")


class Moved(Reply):
    """Booked, or a duplicate of a movement booked before (then no entry)."""

    duplicate: bool
    qty: int
    entry: StockEntry | None = None


class StockItem(Reply):
    barcode: str
    name: str | None
    shelf: str | None
    qty: int
    low_stock: int | None
    low: bool


class StockList(Reply):
    stock: list[StockItem]


class ItemLedger(Reply):
    """One item's quantity and its newest ledger entries."""

    barcode: str
    qty: int
    entries: list[StockEntry]


class Restored(Reply):
    """The entries that put the goods back."""

    order: str
    restored: list[StockEntry]


class PushState(Reply):
    platform: str
    sku: str
    barcode: str
    qty: int = Field(description="What the platform should show.")
    pushed_qty: int | None = Field(description="What it was last told.")
    pending: bool
    attempts: int
    error: str | None
    next_try: str | None
    pushed_at: str | None


class PushStateList(Reply):
    push: list[PushState]


class LedgerQuery(Body):
    limit: int = Field(default=100, ge=1, le=1000, description="Entries to list.")
