"""Who gets in: a scanned line walks up through the rules and back down to the lock.

    scanner driver -> on_scan -> classify -> verify pass / look up code -> decide
    -> journal (access.granted|denied + access log + used pass, one durable commit)
    -> door.release -> lock driver -> codec -> bytes on the wire
    -> journal (door.unlocked, pickup.completed + order picked up)

The decision's effects are taken in memory before the first await (one event loop, so
two quick scans of one pass cannot both win) and undone if the journal or the lock fails.
Orders become picked up only once the door really opened for the courier, so a courier
whose door jammed can try again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from agent.clock import Clock
from agent.config.schema import AgentConfig, DoorConfig
from agent.devices.base import DeviceError
from agent.journal import (
    ForgetPass,
    Journal,
    JournalError,
    LogAccess,
    SetOrderStatus,
    UsePass,
)
from agent.rules.answers import answer_matches
from agent.rules.decide import AccessState, Decision, DoorPolicy, decide_code, decide_pass
from agent.rules.passes import PassVerifier
from agent.rules.reasons import Reason
from agent.rules.scan import MalformedScan, PassScan, PickupCodeScan, ProductScan, classify
from agent.services.door import Door
from agent.services.orders import PendingOrders

log = logging.getLogger(__name__)

CODE_WINDOW_S = 60.0


@dataclass(slots=True)
class _Waiting:
    decision: Decision
    timer: asyncio.TimerHandle


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
        self._code_failures: dict[str, deque[float]] = {}
        self._waiting: dict[str, _Waiting] = {}
        self.decisions = 0
        # scan line read -> lock command written, for the last grants (ms)
        self.latencies_ms: deque[float] = deque(maxlen=10_000)

    # --- entry points ----------------------------------------------------------------

    async def on_scan(self, door_id: str, line: str, read_ns: int = 0) -> Decision:
        """A line scanned at a door: decide, record, and open the door if granted.
        `read_ns` (perf_counter_ns when the line was read) feeds the latency figures."""
        policy = self._policies[door_id]
        now = self._clock.now()
        scan = classify(line, code_length=self.cfg.pickup.code_length)
        match scan:
            case PassScan(token):
                verified = self._verifier.verify(token, store=self.cfg.store.id, now=now)
                decision = decide_pass(verified, policy, self.state, now)
            case PickupCodeScan(code):
                self._count_recent_failures(door_id)
                decision = decide_code(code, policy, self.state, now)
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
            self._await_answer(decision)
            return decision
        return await self.commit(decision, read_ns)

    async def on_answer(self, door_id: str, text: str) -> Decision | None:
        """A line typed on the door's keypad: the answer to its entry question."""
        waiting = self._waiting.pop(door_id, None)
        if waiting is None:
            log.info("door %s: keypad input with no pass waiting for an answer", door_id)
            return None
        waiting.timer.cancel()
        question = self._door_cfg[door_id].entry_question
        assert question is not None
        ok = await asyncio.to_thread(answer_matches, text, question.answers)
        self._release_reservation(waiting.decision)
        d = waiting.decision
        decision = (
            d.with_reason(Reason.GRANTED)
            if ok
            else d.with_reason(Reason.WRONG_ANSWER, "wrong answer")
        )
        return await self.commit(decision)

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

    async def commit(self, decision: Decision, read_ns: int = 0) -> Decision:
        """Journal the decision (durably), then apply it to the door."""
        self.decisions += 1
        door = self._doors[decision.door]
        undo = self._reserve(decision) if decision.granted else None
        ops: list[Any] = [self._access_log(decision)]
        if decision.granted and decision.jti and decision.scope != "pickup":
            ops.append(UsePass(decision.jti, decision.exp or self._clock.now()))
        kind = "access.granted" if decision.granted else "access.denied"
        try:
            await self._journal.append(kind, event_data(decision), ops=ops)
        except JournalError as e:
            if undo:
                undo()
            log.error(
                "door %s: cannot record the decision (%s): the door stays locked", decision.door, e
            )
            return decision.with_reason(decision.reason, f"not recorded, door not opened: {e}")
        self._log_decision(decision)
        if not decision.granted:
            if decision.method == "code" and decision.reason is Reason.UNKNOWN_ORDER:
                self._code_failures.setdefault(decision.door, deque()).append(time.monotonic())
            return decision
        try:
            actuated_ns = await door.release(
                by="grant", data={"scope": decision.scope, "sub": decision.sub}
            )
            if read_ns and actuated_ns > read_ns:
                self.latencies_ms.append((actuated_ns - read_ns) / 1e6)
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

    def _await_answer(self, decision: Decision) -> None:
        old = self._waiting.pop(decision.door, None)
        if old:
            old.timer.cancel()
            self._release_reservation(old.decision)
        question = self._door_cfg[decision.door].entry_question
        assert question is not None
        if decision.jti:
            self.state.used_jti[decision.jti] = decision.exp or 0.0
        loop = asyncio.get_running_loop()
        timer = loop.call_later(question.timeout_seconds, self._answer_timed_out, decision.door)
        self._waiting[decision.door] = _Waiting(decision, timer)
        log.info("door %s: pass accepted, waiting for the answer on the keypad", decision.door)

    def _answer_timed_out(self, door_id: str) -> None:
        waiting = self._waiting.pop(door_id, None)
        if waiting:
            self._release_reservation(waiting.decision)
            asyncio.get_running_loop().create_task(
                self.commit(waiting.decision.with_reason(Reason.WRONG_ANSWER, "no answer in time"))
            )

    def _release_reservation(self, d: Decision) -> None:
        if d.jti:
            self.state.used_jti.pop(d.jti, None)

    def _count_recent_failures(self, door_id: str) -> None:
        q = self._code_failures.setdefault(door_id, deque())
        horizon = time.monotonic() - CODE_WINDOW_S
        while q and q[0] < horizon:
            q.popleft()
        self.state.code_failures[door_id] = len(q)

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
        hours=door.hours if door.hours is not None else cfg.business.hours,
        timezone=ZoneInfo(cfg.store.timezone),
        occupancy_limit=door.occupancy_limit,
        has_question=door.entry_question is not None,
        pickup_when_closed=cfg.pickup.when_closed,
        code_attempts_per_minute=cfg.access.pickup_code_attempts,
    )
