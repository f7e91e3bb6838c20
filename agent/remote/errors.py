"""The one error a command can end in; its code goes into the reply verbatim."""

from __future__ import annotations

from typing import Any

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
