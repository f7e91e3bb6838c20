"""The courier at the door, for programs (CONTRACTS section 8)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BeforeValidator, Field, field_validator
from pydantic_core import PydanticCustomError

from cloud.api.bodies.base import Body, Reply, Timestamp
from cloud.couriers.door import PLATFORMS
from cloud.couriers.tail import normalize_tail

Platform = Literal["meituan", "eleme", "jddj", "douyin"]


class CourierClaim(Body):
    platform: Platform
    # JSON has one number type: 27.0 is the integer 27 (as the document's "integer" says).
    day_seq: Annotated[
        int, BeforeValidator(lambda v: int(v) if isinstance(v, float) and v.is_integer() else v)
    ] = Field(gt=0, lt=100000, description="The order's number of the day.")
    tail: str = Field(
        pattern=r"^\s*[0-9]{4}\s*$", description="The last 4 digits of the order number."
    )
    messages: ClassVar[dict[str, str]] = {
        "platform": f"platform must be one of {', '.join(PLATFORMS)}",
        "day_seq": "day_seq must be the order's number of the day",
        "tail": "tail must be the last 4 digits of the order number",
    }

    @field_validator("tail")
    @classmethod
    def _digits(cls, value: str) -> str:
        typed = normalize_tail(value)
        if typed is None:  # the pattern let through other whitespace than strip() takes
            raise PydanticCustomError("not_a_tail", "not 4 digits")
        return typed


class OpenOrder(Reply):
    """An open pickup order, with nothing that names a customer."""

    platform: Platform
    day_seq: int = Field(description="Number of the day.")
    ordered_at: Timestamp


class CourierOrders(Reply):
    orders: list[OpenOrder]


class PickItem(Reply):
    name: str
    qty: int
    shelf: str


class Delivery(Reply):
    """Where to deliver, the customer's number as the platform gives it (masked or
    virtual) and a map navigation link."""

    address: str
    contact: str
    map: str


class CourierClaimed(Reply):
    order: str
    opened: bool = Field(description="The agent opened the door now (store online).")
    pass_: str = Field(alias="pass", description="Pickup pass (JWT) for the door's scanner.")
    items: list[PickItem]
    note: str
    delivery: Delivery | None = Field(default=None, description="An extension of section 8.")
