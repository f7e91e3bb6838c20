"""A command as the store's services see it, whoever sent it: a signed command from the
hub (agent/mqtt/commands.py verified it), or staff on the spot (agent/app.py
local_command). Below the services, so they can offer commands without knowing the
transport; above it, agent/remote/ and agent/mqtt/ turn a verified command into a Caller.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asked: `sub` (for the journal's `by`), the command's id `jti` (one per
    command), and the hub key `kid` that signed it (None: asked inside the store)."""

    sub: str
    jti: str
    kid: str | None = None


# A command handler: (args, who asked) -> the reply's result; raises CommandError.
Handler = Callable[[dict[str, Any], Caller], Awaitable[dict[str, Any]]]

# Codes a reply may carry in {"ok": false, "error": {"code": ...}}. Refusals of the
# command itself reuse the pass reason codes (bad_signature, expired, replayed, ...).
UNSUPPORTED = "unsupported"  # the store has no such device
BAD_ARGS = "bad_args"  # the arguments are wrong; the message says which and why
UNKNOWN_COMMAND = "unknown_command"
FAILED = "failed"  # the command was valid but the store could not do it


class CommandError(Exception):
    def __init__(self, code: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail

    def to_reply_error(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.detail}


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
