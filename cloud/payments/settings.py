"""The `payments:` section of hub.yaml: the provider's notify secret, the demo page, limits.

Kept apart from cloud/config.py (which holds it as `HubConfig.payments`) so the payment
code owns its schema; nothing here imports the rest of the hub.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

Text = Annotated[str, BeforeValidator(lambda v: "" if v is None else v)]


class PaymentsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    notify_secret: Text = Field(
        "",
        description="HMAC-SHA256 secret the payment provider signs its notifications "
        "(POST /api/v1/payments/{id}/notify) with; never logged. Empty: every "
        "notification is refused.",
    )
    demo: bool = Field(
        False,
        description="Serve the demo pay page /pay/{id} with a 确认支付 button that marks the "
        "payment paid without any money moving. Only for demos and tests: anyone with the "
        "QR could then take goods for free.",
    )
    default_ttl_seconds: int = Field(
        180,
        ge=30,
        le=1800,
        description="How long a payment can be paid when the store asks for none.",
    )
    max_ttl_seconds: int = Field(
        1800, ge=30, le=86400, description="The longest payment a store may ask for."
    )
    max_amount: float = Field(
        5000, gt=0, description="The largest self-checkout payment accepted, in yuan."
    )
    notify_skew_seconds: int = Field(
        300,
        ge=10,
        description="A notification whose timestamp is further from the hub's clock than "
        "this is refused (a replayed old one).",
    )
