"""Checking a command's arguments: shared by the store commands and the services'."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from agent.remote.errors import BAD_ARGS, CommandError
from agent.rules.passes import Claims

# A command handler: (args, the command's claims) -> the reply's result; raises CommandError.
Handler = Callable[[dict[str, Any], Claims], Awaitable[dict[str, Any]]]


def arg(
    args: Mapping[str, Any], name: str, kind: type | tuple[type, ...], *, required: bool = True
) -> Any:
    """args[name], checked to be of `kind`; None when absent and not required."""
    if name not in args:
        if required:
            raise CommandError(BAD_ARGS, f"missing argument {name!r}")
        return None
    value = args[name]
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise CommandError(BAD_ARGS, f"argument {name!r} must be a number")
    if not isinstance(value, kind):
        want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise CommandError(
            BAD_ARGS, f"argument {name!r} must be {want}, got {type(value).__name__}"
        )
    return value
