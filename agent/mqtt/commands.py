"""Signed remote commands (CONTRACTS section 3): verify, refuse replays, run, reply.

Transport-free: `CommandRunner.run(payload)` takes the bytes of one message on the cmd
topic and returns the `Outcome` whose `reply()` goes back on the reply topic. The order
of things is what makes a command safe to act on:

1. the signature, key, time window, store (`aud`) and scope (`ops`) are checked with the
   same PassVerifier as door passes, at the agent's own clock; any failure refuses the
   command with that reason code;
2. its `jti` is recorded as used, together with a `command.received` event, in one
   journal transaction BEFORE the handler runs: a second delivery of the same command
   (a replay, or QoS 1 redelivery) hits the journal's uniqueness and is `replayed`;
3. the handler runs; a CommandError is a refusal with its code.

Every outcome is journaled as `command.executed` or `command.refused` {cmd, jti, code}.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import jwt

from agent.clock import Clock, format_rfc3339
from agent.journal import Journal, JournalError, UsePass
from agent.journal.errors import CONFLICT
from agent.journal.ops import to_json
from agent.model.commands import FAILED, UNKNOWN_COMMAND, Caller, CommandError
from agent.rules.passes import Claims, PassVerifier, Rejected
from agent.rules.reasons import Reason

log = logging.getLogger(__name__)

OPS_SCOPES = frozenset({"ops"})
BUSY = "busy"  # the command queue was full; nothing was run
MAX_JOURNALED_ARGS = 2048  # bigger args (catalogue uploads) are journaled by their handler
PRUNE_EVERY_S = 60.0

CommandHandler = Callable[[str, dict[str, Any], Caller], Awaitable[dict[str, Any]]]
"""`await handle(cmd, args, caller)` -> the reply's `result`; raises CommandError to refuse."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one command; `reply()` is its payload on the reply topic."""

    id: str | None
    cmd: str | None
    ok: bool
    result: dict[str, Any] | None = None
    code: str = "ok"
    message: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def reply(self) -> dict[str, Any]:
        if self.ok:
            return {"id": self.id, "ok": True, "result": self.result or {}}
        error = {"code": self.code, "message": self.message, **self.detail}
        return {"id": self.id, "ok": False, "error": error}

    @classmethod
    def refused(
        cls, jti: str | None, cmd: str | None, code: str, message: str, **detail: Any
    ) -> Outcome:
        return cls(jti, cmd, False, None, code, message, detail)


def claimed_jti(token: str) -> str | None:
    """The `jti` a token claims, signature unchecked: only to label a refusal's reply so
    the sender can match it, never to decide anything."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    jti = claims.get("jti") if isinstance(claims, dict) else None
    return jti if isinstance(jti, str) and jti else None


def decode_payload(payload: bytes | bytearray | str) -> str | None:
    if isinstance(payload, str):
        return payload.strip()
    try:
        return bytes(payload).decode("utf-8").strip()
    except UnicodeDecodeError:
        return None


async def ping(cmd: str, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """The default handler: answers `ping` and refuses everything else as unknown.

    The agent passes its full set of handlers (agent/remote/commands.py) instead."""
    if cmd == "ping":
        return {"pong": True, "ts": format_rfc3339(time.time())}
    raise CommandError(UNKNOWN_COMMAND, f"unknown command {cmd!r}")


class CommandRunner:
    def __init__(
        self,
        *,
        store: str,
        journal: Journal,
        verifier: PassVerifier,
        clock: Clock,
        handle: CommandHandler,
        skew_seconds: float,
    ) -> None:
        self.store = store
        self.journal = journal
        self.verifier = verifier
        self.clock = clock
        self.handle = handle
        self._skew = skew_seconds
        # jti -> exp of commands seen by this process: a replay is refused without a
        # journal write. The journal's used_passes table is what holds across restarts.
        self._seen: dict[str, float] = {}
        self._pruned_at = 0.0

    def busy(self, payload: bytes | bytearray | str) -> Outcome:
        """The refusal of a command that found the queue full (nothing is run)."""
        token = decode_payload(payload)
        jti = claimed_jti(token) if token else None
        return Outcome.refused(jti, None, BUSY, "too many commands waiting; nothing was run")

    async def run(self, payload: bytes | bytearray | str) -> Outcome:
        """Verify and run one command. Call `record(outcome)` once its reply is sent."""
        token = decode_payload(payload)
        if not token:
            return Outcome.refused(None, None, Reason.MALFORMED, "payload is not a signed command")
        now = self.clock.now()
        checked = self.verifier.verify(token, store=self.store, now=now, scopes=OPS_SCOPES)
        if isinstance(checked, Rejected):
            return Outcome.refused(
                checked.jti or claimed_jti(token), None, checked.reason, checked.detail
            )
        claims = checked
        cmd = claims.extra.get("cmd")
        args = claims.extra.get("args", {})
        if not isinstance(cmd, str) or not cmd:
            return Outcome.refused(claims.jti, None, Reason.MALFORMED, "claim 'cmd' is missing")
        if not isinstance(args, dict):
            return Outcome.refused(
                claims.jti, cmd, Reason.MALFORMED, "claim 'args' is not an object"
            )
        self._prune(now)
        if claims.jti in self._seen:
            return Outcome.refused(claims.jti, cmd, Reason.REPLAYED, "command already received")
        try:
            await self.journal.append(
                "command.received",
                _received_data(claims, cmd, args),
                ops=[UsePass(claims.jti, claims.exp)],
            )
        except JournalError as e:
            if e.code == CONFLICT:
                self._seen[claims.jti] = claims.exp
                return Outcome.refused(claims.jti, cmd, Reason.REPLAYED, "command already received")
            log.error("command %s not run: could not journal it: %s", cmd, e)
            return Outcome.refused(claims.jti, cmd, FAILED, f"could not journal the command: {e}")
        self._seen[claims.jti] = claims.exp
        try:
            # Past here only who asked matters, not how it was signed.
            caller = Caller(sub=claims.sub, jti=claims.jti, kid=claims.kid)
            result = await self.handle(cmd, args, caller)
        except CommandError as e:
            return Outcome.refused(claims.jti, cmd, e.code, e.message, **e.detail)
        except Exception as e:
            log.exception("command %s failed", cmd)
            return Outcome.refused(claims.jti, cmd, FAILED, f"{type(e).__name__}: {e}")
        return Outcome(claims.jti, cmd, True, result if isinstance(result, dict) else {})

    async def record(self, outcome: Outcome) -> None:
        """Journal the outcome (after the reply: the sender should not wait for it)."""
        data: dict[str, Any] = {"cmd": outcome.cmd, "jti": outcome.id, "code": outcome.code}
        if not outcome.ok:
            data["message"] = outcome.message
            log.warning(
                "command %s (%s) refused: %s: %s",
                outcome.cmd or "?",
                outcome.id or "no id",
                outcome.code,
                outcome.message,
            )
        try:
            await self.journal.append("command.executed" if outcome.ok else "command.refused", data)
        except JournalError as e:
            log.error("could not journal the outcome of command %s: %s", outcome.cmd, e)

    def _prune(self, now: float) -> None:
        if now - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = now
        horizon = now - self._skew
        for jti in [j for j, exp in self._seen.items() if exp < horizon]:
            del self._seen[jti]


def _received_data(claims: Claims, cmd: str, args: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {"cmd": cmd, "jti": claims.jti, "sub": claims.sub, "kid": claims.kid}
    try:
        size = len(to_json(args))
    except (TypeError, ValueError):
        size = None
    if size is not None and size <= MAX_JOURNALED_ARGS:
        data["args"] = args
    else:
        data["args_bytes"] = size
    return data
