"""Self-checkout payments (issue 6). Amounts in yuan with 2 decimals."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from cloud.api.bodies.base import Body, Reply, Timestamp
from cloud.payments.service import to_fen

MAX_ITEMS = 200


def _yuan(value: Any) -> Any:
    to_fen(value)  # ValueError with the reason: not a number, not 2 decimals, not positive
    return value


class PaymentItem(Body):
    barcode: str = ""
    name: str = ""
    qty: int = Field(ge=1)
    price: float = Field(gt=0, description="Yuan, 2 decimals.")

    @field_validator("price", mode="before")
    @classmethod
    def _price(cls, value: Any) -> Any:
        return _yuan(value)

    @field_validator("barcode", "name", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str:
        return str(value)  # as the checkout sends it; only cut to length

    def to_json(self) -> dict[str, Any]:
        return {
            "barcode": self.barcode[:64],
            "name": self.name[:200],
            "qty": self.qty,
            "price": self.price,
        }


class PaymentRequest(Body):
    checkout: str = Field(min_length=1, max_length=64)
    cart: str = Field(min_length=1, max_length=64)
    amount: float = Field(gt=0, description="Yuan: the sum of the items' price × qty.")
    items: list[PaymentItem] = Field(min_length=1, max_length=MAX_ITEMS)
    ttl_seconds: int | None = Field(default=None, ge=30)
    messages: ClassVar[dict[str, str]] = {
        "checkout": "checkout must be a string of 1-64 characters",
        "cart": "cart must be a string of 1-64 characters",
        "items": f"items must be a list of 1-{MAX_ITEMS} items",
        "items.*": "{path} must be an object",
        "items.*.qty": "{path} must be a whole number, at least 1",
        "ttl_seconds": "ttl_seconds must be a whole number of seconds, at least 30",
    }

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Any:
        return _yuan(value)

    @model_validator(mode="after")
    def _sum(self) -> PaymentRequest:
        if sum(round(i.price * 100) * i.qty for i in self.items) != self.amount_fen:
            raise ValueError("amount is not the sum of the items' price × qty")
        return self

    @property
    def amount_fen(self) -> int:
        return to_fen(self.amount)


class Payment(Reply):
    id: str
    store: str
    checkout: str
    cart: str
    amount: float = Field(description="Yuan, 2 decimals.")
    items: list[PaymentItem]
    status: Literal["pending", "paid", "cancelled", "expired"]
    created_at: Timestamp
    expires_at: Timestamp
    paid_at: Timestamp | None
    method: str | None
    delivery: str | None = Field(
        description="checkout.paid to the store: sending, acked, refused, no_reply or unsent."
    )


class PaymentReply(Reply):
    payment: Payment


class PaymentCreated(PaymentReply):
    qr_url: str = Field(description="What the checkout shows as a QR.")


class PaymentNotification(Body):
    """The provider's notification, HMAC-signed (cloud/payments/notify.py checks it)."""

    payment: str
    amount: float
    status: str = Field(description="SUCCESS when paid.")
    transaction_id: str = ""
    method: str = ""


class NotifyTaken(Reply):
    code: Literal["SUCCESS"]
