"""The delivery platforms' webhooks: their bodies are theirs (cloud/platforms/*)."""

from __future__ import annotations

from typing import Any

from pydantic import RootModel


class PlatformReply(RootModel[dict[str, Any] | str]):
    """The answer in the pushing platform's own shape (Meituan `{"data": "ok"}`, Eleme,
    JD Daojia and Douyin theirs)."""


class PlatformPush(RootModel[dict[str, Any]]):
    """The platform's own push fields (form or JSON), checked against its signature."""
