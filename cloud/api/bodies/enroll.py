"""A new store's enrollment (CONTRACTS section 9; cloud/enrollment)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from cloud.api.bodies.base import Body, Reply
from cloud.enrollment import codes


class EnrollRequest(Body):
    code: str = Field(
        examples=["1234-5678-9012"],
        description=f"The one-time code: {codes.DIGITS} digits, dashes and spaces allowed.",
    )
    public_key: str = Field(description="The agent's Ed25519 public key, PEM.")
    messages: ClassVar[dict[str, str]] = {
        "code": f"code must be {codes.DIGITS} digits",
        "public_key": "public_key must be the agent's Ed25519 key as PEM",
    }

    @field_validator("code", mode="before")
    @classmethod
    def _digits(cls, value: Any) -> str:
        # A code typed into a spreadsheet comes back a number: its digits are still the code.
        digits = codes.normalize(str(value))
        if digits is None:
            raise PydanticCustomError("not_a_code", "not a code")
        return digits


class BundleKey(Reply):
    kid: str
    pem: str


class BundleMqtt(Reply):
    url: str
    topic_root: str
    username: str | None
    password: str | None
    ca_pem: str | None


class EnrollBundle(Reply):
    """The store's identity, credentials and config (cloud/enrollment/bundle.py)."""

    store: dict[str, Any] = Field(description="id, name, and the store's settings")
    token: str = Field(description="The store's bearer token.")
    keys: list[BundleKey] = Field(description="The hub's public keys.")
    mqtt: BundleMqtt
    config: dict[str, Any] = Field(description="The store's agent settings.")
