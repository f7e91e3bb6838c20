"""The hub's own health, and this API's description."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import RootModel

from cloud.api.bodies.base import Reply


class Health(Reply):
    ok: bool
    db: Literal["sqlite", "postgresql"]
    version: str
    error: str | None = None


class OpenApiDocument(RootModel[dict[str, Any]]):
    """This document."""
