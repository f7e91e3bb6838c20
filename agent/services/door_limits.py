"""The doors' limits on guessing: pickup codes, entry answers, bursts of lines.

Every limit is counted at the moment of the decision, in memory, before the decision's
first await: the event loop runs one task at a time, so of two lines decided in two
tasks the second sees what the first one counted, however many lines a burst holds. The
new count is saved as a journal setting in the same transaction as the decision's event,
so a restart or a reload resumes where the door stood.

- Pickup codes, per door: escalating pauses (agent/rules/lockout.py), setting
  `code_lockout/<door>`.
- Entry answers, per pass and door: the pass is used up after `attempts` wrong answers.
  An answer counts as wrong from the moment it is typed until the check (scrypt, in a
  thread) says otherwise. Setting `answer_failures`: {"<door> <jti>": {"wrong", "exp"}},
  pruned of passes that can no longer be used.
- Bursts, per door: `scan_burst.lines` lines within `scan_burst.seconds` is faster than
  anyone scans (a QR holding line breaks, a scanner gone wild). Each line is still
  decided on its own and counted against the limits; the burst is journaled once as
  `access.burst` so the hub can page someone.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.clock import format_rfc3339
from agent.config.schema import AgentConfig
from agent.journal import PutSetting
from agent.rules.lockout import CLEAR, Lockout, LockoutPolicy, record_failure

log = logging.getLogger(__name__)

CODE_SETTING = "code_lockout/{}"
ANSWER_SETTING = "answer_failures"


@dataclass(frozen=True, slots=True)
class CodeOutcome:
    """What a wrong code changed: the setting to save, and the event of a new pause."""

    op: PutSetting
    locked_out: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class AnswerCount:
    wrong: int  # wrong answers with this pass at this door, the one being checked included
    allowed: int

    @property
    def used_up(self) -> bool:
        return self.wrong >= self.allowed


class DoorLimits:
    def __init__(
        self,
        cfg: AgentConfig,
        settings: Mapping[str, Any],
        paused_until: dict[str, float],
    ) -> None:
        lockout = cfg.access.code_lockout
        self._policy = LockoutPolicy(
            attempts=cfg.access.pickup_code_attempts,
            pause_s=lockout.pause_seconds,
            max_pause_s=lockout.max_pause_seconds,
            reset_after_s=lockout.reset_after_seconds,
        )
        self._skew = float(cfg.access.clock_skew_seconds)
        self._attempts = {
            d.id: d.entry_question.attempts for d in cfg.doors if d.entry_question is not None
        }
        self._burst = cfg.access.scan_burst
        # The rules read the pauses from here (AccessState.code_paused_until).
        self._paused_until = paused_until
        self._codes: dict[str, Lockout] = {}
        for door in cfg.doors:
            key = CODE_SETTING.format(door.id)
            if key in settings:
                self._set_code(door.id, _restored(key, settings[key]))
        self._answers: dict[str, dict[str, float]] = _restored_answers(settings.get(ANSWER_SETTING))
        self._lines: dict[str, deque[float]] = {}
        self._in_burst: set[str] = set()

    # --- pickup codes -----------------------------------------------------------------

    def code_state(self, door: str) -> Lockout:
        return self._codes.get(door, CLEAR)

    def code_failed(self, door: str, now: float) -> CodeOutcome:
        """A wrong code was looked up at `door` (no pause was on)."""
        failed = record_failure(self.code_state(door), self._policy, now)
        self._set_code(door, failed.state)
        event = None
        if failed.pause_s is not None:
            event = {
                "door": door,
                "kind": "pickup_code",
                "pause_seconds": failed.pause_s,
                "until": format_rfc3339(failed.state.until),
                "pause": failed.state.level,  # the streak's pause number, 1 for the first
                "wrong": failed.state.total,  # wrong codes in the streak so far
            }
            log.warning(
                "door %s: too many wrong pickup codes: codes paused for %.0f s (pause %d)",
                door,
                failed.pause_s,
                failed.state.level,
            )
        return CodeOutcome(PutSetting(CODE_SETTING.format(door), failed.state.to_json()), event)

    def code_succeeded(self, door: str) -> PutSetting | None:
        """A good code at `door`: its streak is over (None: there was none)."""
        if self.code_state(door).clear:
            return None
        self._set_code(door, CLEAR)
        return PutSetting(CODE_SETTING.format(door), CLEAR.to_json())

    def _set_code(self, door: str, state: Lockout) -> None:
        self._codes[door] = state
        if state.until:
            self._paused_until[door] = state.until
        else:
            self._paused_until.pop(door, None)

    # --- entry answers ----------------------------------------------------------------

    def answer_typed(self, door: str, jti: str, exp: float | None) -> AnswerCount:
        """Count an answer typed with pass `jti` at `door`, before it is checked."""
        entry = self._answers.setdefault(f"{door} {jti}", {"wrong": 0, "exp": exp or 0.0})
        entry["wrong"] += 1
        return AnswerCount(int(entry["wrong"]), self._attempts.get(door, 1))

    def answer_right(self, door: str, jti: str) -> None:
        """The answer was right: it was no guess (the pass is used by the grant)."""
        self._answers.pop(f"{door} {jti}", None)

    def answer_used_up(self, door: str, jti: str) -> None:
        """The pass is used up (UsePass keeps it so): its count is no longer needed."""
        self._answers.pop(f"{door} {jti}", None)

    def answers_op(self, now: float) -> PutSetting:
        """The wrong-answer counts to save, without passes that can no longer be used."""
        horizon = now - self._skew
        for key in [k for k, v in self._answers.items() if 0 < v["exp"] < horizon]:
            del self._answers[key]
        return PutSetting(ANSWER_SETTING, {k: dict(v) for k, v in self._answers.items()})

    # --- bursts -----------------------------------------------------------------------

    def line_seen(self, door: str, now: float) -> dict[str, Any] | None:
        """A line arrived at `door`; the `access.burst` event's data if a burst starts."""
        q = self._lines.get(door)
        if q is None:
            q = self._lines[door] = deque(maxlen=self._burst.lines)
        if q and now - q[-1] >= self._burst.seconds:
            self._in_burst.discard(door)  # quiet for a whole window: the burst is over
        q.append(now)
        if len(q) < self._burst.lines or now - q[0] >= self._burst.seconds:
            return None
        if door in self._in_burst:
            return None
        self._in_burst.add(door)
        log.warning(
            "door %s: %d lines within %.3f s: faster than anyone scans (a QR holding line breaks?)",
            door,
            len(q),
            now - q[0],
        )
        return {"door": door, "lines": len(q), "seconds": round(now - q[0], 3)}


def _restored(key: str, raw: Any) -> Lockout:
    try:
        return Lockout.from_json(raw)
    except ValueError as e:
        # Only this agent writes it: unreadable means a damaged file, not an attack.
        log.error("setting %s is unreadable (%s): the door's code limit starts afresh", key, e)
        return CLEAR


def _restored_answers(raw: Any) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    if raw is None:
        return out
    if not isinstance(raw, Mapping):
        log.error("setting %s is unreadable: %r", ANSWER_SETTING, raw)
        return out
    for key, value in raw.items():
        if (
            isinstance(value, Mapping)
            and isinstance(value.get("wrong"), int)
            and isinstance(value.get("exp"), int | float)
        ):
            out[str(key)] = {"wrong": value["wrong"], "exp": float(value["exp"])}
        else:
            log.error("setting %s: entry %s is unreadable: %r", ANSWER_SETTING, key, value)
    return out
