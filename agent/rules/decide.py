"""The access decision: one pure function per kind of credential.

Inputs are a verified pass (or a pickup code), the door's policy, the store's live state
and the time; the output is a Decision with exactly one reason code. Nothing here does
I/O or keeps state: the door service records the decision and applies its effects
(used pass ids, picked-up orders, occupancy) in the journal.

Order of checks, first failing one wins (so the reason is the most useful one to show):
  pass:  [signature, time, store, scope: agent/rules/passes.py] -> wrong_door -> replayed
         -> blocked -> (staff: granted) -> lockdown -> closed -> full
         -> pickup: unknown_order | cancelled | already_picked_up -> granted
  code:  rate_limited -> lockdown -> closed -> full -> unknown_order | cancelled
         | already_picked_up -> granted
An entry pass at a door with an entry question is granted with `needs_answer`: the door
service then waits for the keypad and turns it into granted or wrong_answer.
"""

from __future__ import annotations

import datetime as dt
import hmac
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

from agent.rules.hours import Hours, is_open
from agent.rules.passes import Claims, Rejected
from agent.rules.reasons import Reason


@dataclass(frozen=True, slots=True)
class DoorPolicy:
    door: str
    scopes: frozenset[str]
    hours: Hours
    timezone: ZoneInfo
    occupancy_limit: int | None = None
    has_question: bool = False
    pickup_when_closed: bool = True


@dataclass(slots=True)
class AccessState:
    """The store's live state, as the rules read it (the door service keeps it)."""

    business_open: bool = True
    lockdown: set[str] = field(default_factory=set)  # door ids in lockdown
    block_list: set[str] = field(default_factory=set)
    staff: set[str] = field(default_factory=set)  # empty: any staff pass
    used_jti: dict[str, float] = field(default_factory=dict)  # jti -> exp
    orders: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # code -> its pending order, or the last order that had it (to say why not)
    orders_by_code: Mapping[str, str] = field(default_factory=dict)
    occupancy: dict[str, int] = field(default_factory=dict)
    # door -> pickup codes paused until (agent/rules/lockout.py; the door service keeps it)
    code_paused_until: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    reason: Reason
    door: str
    method: Literal["pass", "code", "other"]
    scope: str | None = None
    sub: str | None = None
    jti: str | None = None
    exp: float | None = None
    orders: tuple[str, ...] = ()  # orders this grant picks up
    items: tuple[Mapping[str, Any], ...] = ()  # what to take, with shelf numbers
    detail: str = ""
    needs_answer: bool = False

    @property
    def granted(self) -> bool:
        return self.reason is Reason.GRANTED

    def with_reason(self, reason: Reason, detail: str = "") -> Decision:
        return Decision(
            reason,
            self.door,
            self.method,
            self.scope,
            self.sub,
            self.jti,
            self.exp,
            self.orders,
            self.items,
            detail,
            needs_answer=False,
        )


def _door_rules(
    policy: DoorPolicy, state: AccessState, scope: str, local: dt.datetime
) -> tuple[Reason, str] | None:
    if policy.door in state.lockdown:
        return Reason.LOCKDOWN, "the door is in lockdown: staff only"
    closed_applies = not (scope == "pickup" and policy.pickup_when_closed)
    if closed_applies and not state.business_open:
        return Reason.CLOSED, "the store is closed"
    if closed_applies and not is_open(policy.hours, local):
        return Reason.CLOSED, f"outside business hours ({local:%H:%M})"
    limit = policy.occupancy_limit
    if limit is not None and state.occupancy.get(policy.door, 0) >= limit:
        return Reason.FULL, f"{limit} people inside"
    return None


def _match_orders(
    ids: tuple[str, ...], state: AccessState
) -> tuple[Reason, tuple[str, ...], tuple[Mapping[str, Any], ...], str]:
    pending: list[str] = []
    statuses: list[str] = []
    for oid in ids:
        order = state.orders.get(oid)
        status = order.get("status") if order else None
        statuses.append(status or "unknown")
        if status == "pending":
            pending.append(oid)
    if pending:
        items = tuple(
            {**item, "order": oid} for oid in pending for item in state.orders[oid].get("items", ())
        )
        skipped = [f"{o}: {s}" for o, s in zip(ids, statuses, strict=True) if s != "pending"]
        return Reason.GRANTED, tuple(pending), items, "; ".join(skipped)
    if "picked_up" in statuses:
        return Reason.ALREADY_PICKED_UP, (), (), "already picked up"
    if "cancelled" in statuses:
        return Reason.CANCELLED, (), (), "order cancelled"
    return Reason.UNKNOWN_ORDER, (), (), "no such order here"


def order_tail(platform_order_id: object) -> str:
    """The last 4 digits of a platform order number, as rider apps show them."""
    digits = "".join(c for c in str(platform_order_id or "") if c.isascii() and c.isdigit())
    return digits[-4:]


def decide_tail(
    day_seq: int, tail: str, policy: DoorPolicy, state: AccessState, now: float
) -> Decision:
    """`27*4821` at the keypad: the order of the day numbered 27 whose platform order
    number ends in 4821 opens as its pickup code would, under the same pause."""
    base = decide_code("", policy, state, now)
    if base.reason is not Reason.UNKNOWN_ORDER:  # a pause, the hours, lockdown: said first
        return base
    ids = tuple(
        oid
        for oid, o in state.orders.items()
        if o.get("day_seq") == day_seq
        and o.get("platform") != "local"
        and hmac.compare_digest(order_tail(o.get("platform_order_id")), tail)
    )
    if not ids:
        return base.with_reason(Reason.UNKNOWN_ORDER, f"no order #{day_seq} ending in {tail}")
    reason, orders, items, detail = _match_orders(ids, state)
    if reason is not Reason.GRANTED:
        return base.with_reason(reason, detail)
    return Decision(Reason.GRANTED, policy.door, "code", "pickup", None, None, None, orders, items)


def decide_pass(
    verified: Claims | Rejected, policy: DoorPolicy, state: AccessState, now: float
) -> Decision:
    if isinstance(verified, Rejected):
        return Decision(
            verified.reason,
            policy.door,
            "pass",
            verified.scope,
            verified.sub,
            verified.jti,
            detail=verified.detail,
        )
    c = verified
    base = Decision(Reason.GRANTED, policy.door, "pass", c.scope, c.sub, c.jti, c.exp)
    if c.door is not None and c.door != policy.door:
        return base.with_reason(Reason.WRONG_DOOR, f"pass is for door {c.door!r}")
    if c.scope not in policy.scopes:
        return base.with_reason(
            Reason.WRONG_SCOPE, f"door {policy.door!r} does not take {c.scope} passes"
        )
    if c.scope != "pickup" and c.jti in state.used_jti:
        return base.with_reason(Reason.REPLAYED, "pass already used")
    if c.sub in state.block_list:
        return base.with_reason(Reason.BLOCKED, "subject is on the block list")
    if c.scope == "staff":
        if state.staff and c.sub not in state.staff:
            return base.with_reason(Reason.WRONG_SCOPE, "not on this store's staff list")
        return base
    local = dt.datetime.fromtimestamp(now, policy.timezone)
    door_says = _door_rules(policy, state, c.scope, local)
    if door_says:
        return base.with_reason(*door_says)
    if c.scope == "pickup":
        reason, orders, items, detail = _match_orders(c.orders, state)
        if reason is not Reason.GRANTED:
            return base.with_reason(reason, detail)
        return Decision(
            Reason.GRANTED, policy.door, "pass", c.scope, c.sub, c.jti, c.exp, orders, items, detail
        )
    if policy.has_question:
        return Decision(
            Reason.GRANTED, policy.door, "pass", c.scope, c.sub, c.jti, c.exp, needs_answer=True
        )
    return base


def decide_code(code: str, policy: DoorPolicy, state: AccessState, now: float) -> Decision:
    base = Decision(Reason.GRANTED, policy.door, "code", "pickup", None)
    if "pickup" not in policy.scopes:
        return base.with_reason(Reason.WRONG_SCOPE, f"door {policy.door!r} takes no pickups")
    paused_until = state.code_paused_until.get(policy.door, 0.0)
    if now < paused_until:
        wait = math.ceil(paused_until - now)
        return base.with_reason(
            Reason.RATE_LIMITED, f"too many wrong codes: codes are paused for {wait} s"
        )
    local = dt.datetime.fromtimestamp(now, policy.timezone)
    door_says = _door_rules(policy, state, "pickup", local)
    if door_says:
        return base.with_reason(*door_says)
    oid = state.orders_by_code.get(code)
    if oid is None:
        return base.with_reason(Reason.UNKNOWN_ORDER, "no open order has this code")
    reason, orders, items, detail = _match_orders((oid,), state)
    if reason is not Reason.GRANTED:
        return base.with_reason(reason, detail)
    return Decision(Reason.GRANTED, policy.door, "code", "pickup", None, None, None, orders, items)
