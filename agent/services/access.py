"""Who gets in: a scanned line walks up through the rules and back down to the lock.

    scanner driver -> on_scan -> classify -> verify pass / look up code -> decide
    -> journal (access.granted|denied + access log + used pass, one durable commit)
    -> door.release -> lock driver -> codec -> bytes on the wire
    -> journal (door.unlocked, pickup.completed + order picked up)

The decision's effects are taken in memory before the first await (one event loop, so
two quick scans of one pass cannot both win) and undone if the journal or the lock fails.
The limits on guessing (door_limits.py: pickup codes, entry answers) are counted there
too, before the first await, and saved with the decision. Orders become picked up only
once the door really opened for the courier, so a courier whose door jammed can try
again. A lock that got the OPEN but never answered may have opened: the pass stays used
and `access.uncertain` says so (see `commit`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.clock import Clock
from agent.config.schema import AgentConfig, DoorConfig
from agent.devices.base import DeviceError, DeviceUncertain
from agent.journal import (
    ForgetPass,
    Journal,
    JournalError,
    LogAccess,
    SetOrderStatus,
    UsePass,
)
from agent.rules.decide import (
    AccessState,
    Decision,
    DoorPolicy,
    decide_code,
    decide_pass,
    decide_tail,
)
from agent.rules.hours import Hours
from agent.rules.passes import PassVerifier
from agent.rules.reasons import Reason
from agent.rules.scan import (
    MalformedScan,
    OrderTailScan,
    PassScan,
    PickupCodeScan,
    ProductScan,
    classify,
)
from agent.services.door import Door
from agent.services.door_limits import DoorLimits
from agent.services.orders import PendingOrders
from storerules.answers import answer_matches

log = logging.getLogger(__name__)

# A code that was looked up and opened nothing: a guess, as far as the limit is concerned.
WRONG_CODE = frozenset({Reason.UNKNOWN_ORDER, Reason.CANCELLED, Reason.ALREADY_PICKED_UP})

Events = list[tuple[str, dict[str, Any]]]


@dataclass(slots=True)
class _Waiting:
    decision: Decision
    timer: asyncio.TimerHandle
    events: Events = field(default_factory=list)  # journaled with the answer's decision


class AccessService:
    def __init__(
        self,
        cfg: AgentConfig,
        journal: Journal,
        clock: Clock,
        verifier: PassVerifier,
        orders: PendingOrders,
        doors: dict[str, Door],
        state: AccessState,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.cfg = cfg
        self._journal = journal
        self._clock = clock
        self._verifier = verifier
        self._orders = orders
        self._doors = doors
        self.state = state
        self._policies = {d.id: policy_for(d, cfg) for d in cfg.doors}
        self._door_cfg = {d.id: d for d in cfg.doors}
        self.limits = DoorLimits(cfg, settings or {}, state.code_paused_until)
        self._waiting: dict[str, _Waiting] = {}
        self.decisions = 0
        # scan line read -> lock command written, for the last grants (ms)
        self.latencies_ms: deque[float] = deque(maxlen=10_000)

    # --- entry points ----------------------------------------------------------------

    async def on_scan(self, door_id: str, line: str, read_ns: int = 0) -> Decision:
        """A line scanned at a door: decide, record, and open the door if granted.
        `read_ns` (perf_counter_ns when the line was read) feeds the latency figures."""
        # Everything up to the commit runs without an await: the limits are counted here.
        policy = self._policies[door_id]
        now = self._clock.now()
        events: Events = []
        ops: list[Any] = []
        if burst := self.limits.line_seen(door_id, now):
            events.append(("access.burst", burst))
        scan = classify(line, code_length=self.cfg.pickup.code_length)
        match scan:
            case PassScan(token):
                verified = self._verifier.verify(token, store=self.cfg.store.id, now=now)
                # A verified pass may have moved the clock (the hub's signed time after an
                # offline boot): business hours are judged on the time it proved.
                now = self._clock.now()
                decision = decide_pass(verified, policy, self.state, now)
            case PickupCodeScan(code):
                decision = decide_code(code, policy, self.state, now)
                self._count_code(decision, door_id, now, ops, events)
            case OrderTailScan(day_seq, tail):
                decision = decide_tail(day_seq, tail, policy, self.state, now)
                self._count_code(decision, door_id, now, ops, events)
            case ProductScan(barcode):
                decision = Decision(
                    Reason.WRONG_SCOPE,
                    door_id,
                    "other",
                    detail=f"product barcode {barcode} at a door",
                )
            case MalformedScan(why):
                decision = Decision(Reason.MALFORMED, door_id, "other", detail=why)
        if decision.needs_answer:
            self._await_answer(decision, events)
            return decision
        return await self.commit(decision, read_ns, ops=ops, events=events)

    def _count_code(
        self, decision: Decision, door_id: str, now: float, ops: list[Any], events: Events
    ) -> None:
        """A code or an order's tail that opened nothing is a guess; a right one ends the
        door's streak of wrong ones. Counted before the commit's await."""
        if decision.reason in WRONG_CODE:
            outcome = self.limits.code_failed(door_id, now)
            ops.append(outcome.op)
            if outcome.locked_out:
                events.append(("access.locked_out", outcome.locked_out))
        elif decision.granted and (cleared := self.limits.code_succeeded(door_id)):
            ops.append(cleared)

    async def on_answer(self, door_id: str, text: str) -> Decision | None:
        """A line typed on the door's keypad: the answer to its entry question when a pass
        waits for one; otherwise a courier's pickup code or `<day number>*<tail>`."""
        waiting = self._waiting.pop(door_id, None)
        if waiting is None:
            typed = classify(text, code_length=self.cfg.pickup.code_length)
            if isinstance(typed, PickupCodeScan | OrderTailScan):
                return await self.on_scan(door_id, text)
            log.info("door %s: keypad input with no pass waiting for an answer", door_id)
            return None
        waiting.timer.cancel()
        question = self._door_cfg[door_id].entry_question
        assert question is not None
        d = waiting.decision
        assert d.jti is not None  # an entry pass always has one (agent/rules/passes.py)
        # Counted as wrong from now until the check (a thread: an await) says otherwise, so
        # nothing typed meanwhile, here or at another door, escapes the count. The pass
        # stays reserved (used_jti) until then, so it cannot be scanned again meanwhile.
        count = self.limits.answer_typed(door_id, d.jti, d.exp)
        ok = await asyncio.to_thread(answer_matches, text, question.answers)
        now = self._clock.now()
        if ok:
            self.limits.answer_right(door_id, d.jti)
            self._release_reservation(d)  # taken again, for good, by the grant
            return await self.commit(d.with_reason(Reason.GRANTED), events=waiting.events)
        events = waiting.events
        ops: list[Any] = []
        if count.used_up:
            # The pass stays reserved in memory and is used up on disk: `replayed` from now.
            self.limits.answer_used_up(door_id, d.jti)
            ops.append(UsePass(d.jti, d.exp or now))
            events.append(
                (
                    "access.locked_out",
                    {
                        "door": door_id,
                        "kind": "entry_answer",
                        "sub": d.sub,
                        "jti": d.jti,
                        "wrong": count.wrong,
                    },
                )
            )
            log.warning(
                "door %s: %d wrong answers with the pass of %s: the pass is used up",
                door_id,
                count.wrong,
                d.sub,
            )
            detail = f"wrong answer ({count.wrong} of {count.allowed}): the pass is used up"
        else:
            self._release_reservation(d)  # the pass may try again
            detail = f"wrong answer ({count.wrong} of {count.allowed})"
        ops.append(self.limits.answers_op(now))
        return await self.commit(d.with_reason(Reason.WRONG_ANSWER, detail), ops=ops, events=events)

    def latency_summary(self) -> dict[str, float | int]:
        v = sorted(self.latencies_ms)
        if not v:
            return {"grants": 0}
        pick = lambda q: round(v[min(len(v) - 1, int(q * len(v)))], 3)  # noqa: E731
        return {
            "grants": len(v),
            "p50_ms": pick(0.5),
            "p99_ms": pick(0.99),
            "max_ms": round(v[-1], 3),
        }

    # --- recording and effects -----------------------------------------------------

    async def commit(
        self,
        decision: Decision,
        read_ns: int = 0,
        *,
        ops: Sequence[Any] = (),
        events: Events | None = None,
    ) -> Decision:
        """Journal the decision (durably) with `ops` and `events` (the limits it moved, a
        pause or burst it started), then apply it to the door."""
        self.decisions += 1
        door = self._doors[decision.door]
        undo = self._reserve(decision) if decision.granted else None
        all_ops: list[Any] = [self._access_log(decision), *ops]
        if decision.granted and decision.jti and decision.scope != "pickup":
            all_ops.append(UsePass(decision.jti, decision.exp or self._clock.now()))
        kind = "access.granted" if decision.granted else "access.denied"
        try:
            await self._journal.append_many(
                [(kind, event_data(decision)), *(events or ())], ops=all_ops
            )
        except JournalError as e:
            if undo:
                undo()
            log.error(
                "door %s: cannot record the decision (%s): the door stays locked", decision.door, e
            )
            return decision.with_reason(decision.reason, f"not recorded, door not opened: {e}")
        self._log_decision(decision)
        if not decision.granted:
            return decision
        try:
            actuated_ns = await door.release(
                by="grant", data={"scope": decision.scope, "sub": decision.sub}
            )
            if read_ns and actuated_ns > read_ns:
                self.latencies_ms.append((actuated_ns - read_ns) / 1e6)
        except DeviceUncertain as e:
            return await self._uncertain(decision, e)
        except DeviceError as e:
            if undo:
                undo()
            log.error("door %s: lock did not open: %s", decision.door, e)
            # The pass is given back, so the person can try again once the lock answers.
            given_back = (
                [ForgetPass(decision.jti)] if decision.jti and decision.scope != "pickup" else []
            )
            await self._append_quietly(
                "door.unlock_failed", {"door": decision.door, "error": str(e)}, ops=given_back
            )
            return decision
        if decision.orders:
            await self._complete_pickups(decision)
        return decision

    async def _uncertain(self, d: Decision, e: DeviceUncertain) -> Decision:
        """The OPEN went out and no answer came back: the door may have opened.

        Giving the pass back would let a second person in on it if it did, so the pass
        stays used (the person gets a new one from the hub, or staff open remotely) and
        so does the occupancy count. The orders of a pickup are not completed (their goods
        may still be on the shelf; the platform is not told "picked up"): they go back to
        pending, so the courier's code or pickup pass works again once the lock answers.
        Staff hear of it through `access.uncertain` (a DingTalk alert at the hub)."""
        if d.orders:
            self._orders.set_status_in_memory(d.orders, "pending")
        log.error("door %s: no answer to OPEN, the door may or may not have opened: %s", d.door, e)
        data: dict[str, Any] = {
            "door": d.door,
            "reason": "no_reply",
            "error": str(e),
            "method": d.method,
            "pass_used": bool(d.jti) and d.scope != "pickup",
        }
        for key in ("scope", "sub", "jti"):
            if getattr(d, key):
                data[key] = getattr(d, key)
        if d.orders:
            data["orders_pending"] = list(d.orders)
        await self._append_quietly("access.uncertain", data)
        return d.with_reason(d.reason, f"no answer from the lock, it may have opened: {e}")

    def _reserve(self, d: Decision):  # -> Callable[[], None]
        """Take the grant's effects in memory now; return how to undo them."""
        self.state.occupancy[d.door] = self.state.occupancy.get(d.door, 0) + 1
        used = self.state.used_jti
        if d.jti and d.scope != "pickup":
            used[d.jti] = d.exp or 0.0
        if d.orders:
            self._orders.set_status_in_memory(d.orders, "picked_up")

        def undo() -> None:
            self.state.occupancy[d.door] = max(0, self.state.occupancy.get(d.door, 1) - 1)
            if d.jti and d.scope != "pickup":
                used.pop(d.jti, None)
            if d.orders:
                self._orders.set_status_in_memory(d.orders, "pending")

        return undo

    async def _complete_pickups(self, d: Decision) -> None:
        courier = d.sub or "code"
        items = [
            (
                "pickup.completed",
                {
                    "order": oid,
                    "courier": courier,
                    "door": d.door,
                    "platform": self._orders.by_id[oid].get("platform"),
                    "platform_order_id": self._orders.by_id[oid].get("platform_order_id"),
                    "items": [i for i in d.items if i.get("order") == oid],
                },
            )
            for oid in d.orders
        ]
        ops = [SetOrderStatus(oid, "picked_up") for oid in d.orders]
        try:
            await self._journal.append_many(items, ops=ops)
        except JournalError as e:
            log.error("pickups %s could not be recorded: %s", list(d.orders), e)

    def _await_answer(self, decision: Decision, events: Events) -> None:
        old = self._waiting.pop(decision.door, None)
        if old:
            old.timer.cancel()
            self._release_reservation(old.decision)
            events = old.events + events  # a burst noted while it waited is not lost
        question = self._door_cfg[decision.door].entry_question
        assert question is not None
        if decision.jti:
            self.state.used_jti[decision.jti] = decision.exp or 0.0
        loop = asyncio.get_running_loop()
        timer = loop.call_later(question.timeout_seconds, self._answer_timed_out, decision.door)
        self._waiting[decision.door] = _Waiting(decision, timer, events)
        log.info("door %s: pass accepted, waiting for the answer on the keypad", decision.door)

    def _answer_timed_out(self, door_id: str) -> None:
        waiting = self._waiting.pop(door_id, None)
        if waiting:
            self._release_reservation(waiting.decision)
            asyncio.get_running_loop().create_task(
                self.commit(
                    waiting.decision.with_reason(Reason.WRONG_ANSWER, "no answer in time"),
                    events=waiting.events,
                )
            )

    def _release_reservation(self, d: Decision) -> None:
        if d.jti:
            self.state.used_jti.pop(d.jti, None)

    def _access_log(self, d: Decision) -> LogAccess:
        return LogAccess(
            ts=self._clock.now_rfc3339(),
            door=d.door,
            subject=d.sub,
            scope=d.scope,
            reason=str(d.reason),
            detail={"method": d.method, "orders": list(d.orders), "detail": d.detail},
        )

    def _log_decision(self, d: Decision) -> None:
        if d.granted and d.items:
            picks = ", ".join(
                f"{i.get('qty', 1)}x {i.get('name', i.get('barcode'))}"
                f" @ shelf {i.get('shelf', '?')}"
                for i in d.items
            )
            log.info("door %s: granted pickup %s: take %s", d.door, ",".join(d.orders), picks)
        elif d.granted:
            log.info("door %s: granted %s %s", d.door, d.scope, d.sub)
        else:
            log.info("door %s: denied (%s) %s", d.door, d.reason, d.detail)

    async def _append_quietly(
        self, type_: str, data: dict[str, Any], ops: list[Any] | None = None
    ) -> None:
        try:
            await self._journal.append(type_, data, ops=ops or ())
        except JournalError as e:
            log.error("could not journal %s: %s", type_, e)


def event_data(d: Decision) -> dict[str, Any]:
    data: dict[str, Any] = {"door": d.door, "method": d.method}
    if not d.granted:
        data["reason"] = str(d.reason)
    for key in ("scope", "sub", "jti"):
        if getattr(d, key):
            data[key] = getattr(d, key)
    if d.orders:
        data["orders"] = list(d.orders)
        data["items"] = [dict(i) for i in d.items]
    if d.detail:
        data["detail"] = d.detail
    return data


def policy_for(door: DoorConfig, cfg: AgentConfig) -> DoorPolicy:
    from zoneinfo import ZoneInfo

    return DoorPolicy(
        door=door.id,
        scopes=frozenset(door.scopes),
        hours=_hours(door.hours if door.hours is not None else cfg.business.hours),
        timezone=ZoneInfo(cfg.store.timezone),
        occupancy_limit=door.occupancy_limit,
        has_question=door.entry_question is not None,
        pickup_when_closed=cfg.pickup.when_closed,
    )


def _hours(hours: Sequence[str] | Mapping[Any, Sequence[str]]) -> Hours:
    """The config's hours as the rules take them (its day keys are plain strings)."""
    if isinstance(hours, Mapping):
        return {str(day): list(ranges) for day, ranges in hours.items()}
    return list(hours)
