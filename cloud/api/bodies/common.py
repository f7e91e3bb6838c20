"""The error answer every route shares (CONTRACTS section 3's shape)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from cloud.api.bodies.base import Reply


class ErrorDetail(Reply):
    """What went wrong: a code for programs, a message for people, and where (`field`,
    `index`) when a body was refused."""

    model_config = ConfigDict(extra="allow")  # the details differ from error to error

    code: str = Field(examples=["forbidden"])
    message: str


class Error(Reply):
    """Every error answer (CONTRACTS section 3's shape)."""

    error: ErrorDetail
