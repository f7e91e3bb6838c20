"""A store's platform orders as its agent takes them, and the courier's pickup pass."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from cloud.api.bodies.base import Body, Reply, Timestamp


class OrderItem(Reply):
    barcode: str
    name: str
    qty: int
    shelf: str = Field(description="货架号")


class Order(Reply):
    """A platform order as `orders.upsert` carries it (CONTRACTS section 3)."""

    id: str = Field(examples=["meituan-27001"])
    platform: Literal["meituan", "eleme", "jddj", "douyin", "local"]
    platform_order_id: str
    day_seq: int
    pickup_code: str = Field(pattern="^[0-9]*$")
    status: Literal["pending", "picked_up", "cancelled", "refunded"]
    items: list[OrderItem]
    note: str


class OrderList(Reply):
    orders: list[Order]
    now: Timestamp = Field(
        description="The hub's time: pass it (less a margin) as the next updated_after."
    )


class PickupPass(Reply):
    pass_: str = Field(alias="pass", description="A pickup pass (CONTRACTS section 2).")
    qr_svg: str = Field(description="The pass as an SVG QR code.")
    expires_at: Timestamp
    order: str
    pickup_code: str | None
    day_seq: int | None
    link: str = Field(description="The signed courier page path.")


class OrdersQuery(Body):
    status: str | None = Field(
        default=None,
        description="pending, picked_up, cancelled or refunded; repeated or comma-separated "
        "for several; absent: all.",
    )
    updated_after: Timestamp | None = Field(
        default=None, description="Only orders changed after this RFC 3339 time (with offset)."
    )
    nonce: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{16,128}$",
        description="With Accept: application/jwt, echoed in the signed answer's "
        "`sync.nonce`: the agent's proof that the answer is to this request.",
    )


class PickupPassQuery(Body):
    courier: str | None = Field(
        default=None,
        max_length=100,
        description="The courier's id, as the pass's `sub` (default courier:<platform>).",
    )
