"""An order as the hub keeps it, and as a store's agent takes it (CONTRACTS section 3)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cloud.platforms.base import OrderItem, OrderRef

Status = Literal["pending", "picked_up", "cancelled"]
ChangeKind = Literal["created", "updated", "cancelled", "picked_up", "refunded"]
STATUSES: frozenset[str] = frozenset({"pending", "picked_up", "cancelled"})


def hub_order_id(platform: str, platform_order_id: str) -> str:
    """The hub's id of a platform order: stable, and unique across platforms."""
    return f"{platform}-{platform_order_id}"


@dataclass(frozen=True, slots=True)
class StoredOrder:
    id: str
    store: str
    platform: str
    platform_order_id: str
    shop_id: str
    day_seq: int
    pickup_code: str
    status: Status
    items: tuple[OrderItem, ...]
    note: str = ""
    platform_status: str = ""
    view_id: str = ""
    total: int = 0
    fees: int = 0
    commission: int = 0
    courier: str | None = None
    created_at: str = ""
    updated_at: str = ""
    picked_up_at: str | None = None
    refunded_at: str | None = None
    delivery: Mapping[str, Any] | None = None  # {address, contact, lat, lng}

    @property
    def ref(self) -> OrderRef:
        return OrderRef(self.platform_order_id, self.shop_id)

    def to_agent(self) -> dict[str, Any]:
        """The order as `orders.upsert` carries it. An item's barcode is the platform's
        barcode, else the merchant's sku code (what the shop listed it by)."""
        return {
            "id": self.id,
            "platform": self.platform,
            "platform_order_id": self.platform_order_id,
            "day_seq": self.day_seq,
            "pickup_code": self.pickup_code,
            "status": self.status,
            "items": [
                {
                    "barcode": item.barcode or item.sku,
                    "name": item.name,
                    "qty": item.qty,
                    "shelf": item.shelf,
                }
                for item in self.items
            ],
            "note": self.note,
        }

    def to_json(self) -> dict[str, Any]:
        """Everything the hub knows of the order (for operators and dashboards)."""
        return {
            **self.to_agent(),
            "store": self.store,
            "shop_id": self.shop_id,
            "view_id": self.view_id,
            "platform_status": self.platform_status,
            "items": [item.to_json() for item in self.items],
            "total": self.total,
            "fees": self.fees,
            "commission": self.commission,
            "courier": self.courier,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "picked_up_at": self.picked_up_at,
            "refunded_at": self.refunded_at,
        }

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> StoredOrder:
        return cls(
            id=row["id"],
            store=row["store_id"],
            platform=row["platform"],
            platform_order_id=row["platform_order_id"],
            shop_id=row["shop_id"],
            day_seq=row["day_seq"],
            pickup_code=row["pickup_code"],
            status=row["status"],
            items=tuple(OrderItem.from_json(i) for i in json.loads(row["items"])),
            note=row["note"],
            platform_status=row["platform_status"],
            view_id=row["view_id"],
            total=row["total"],
            fees=row["fees"],
            commission=row["commission"],
            courier=row["courier"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            picked_up_at=row["picked_up_at"],
            refunded_at=row["refunded_at"],
            delivery=json.loads(row["delivery"]) if row.get("delivery") else None,
        )
