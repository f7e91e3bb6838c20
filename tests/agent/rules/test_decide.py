"""The decision table: every reason the door can give, from the rules alone."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from agent.rules.decide import AccessState, DoorPolicy, decide_code, decide_pass
from agent.rules.passes import Claims, Rejected
from agent.rules.reasons import Reason

TZ = ZoneInfo("Asia/Shanghai")
NOON = 1_800_003_600.0  # 2027-01-15 12:00 in Shanghai... any instant works for 24h hours
POLICY = DoorPolicy(
    door="front", scopes=frozenset({"entry", "pickup", "staff"}), hours=["00:00-24:00"], timezone=TZ
)


def claims(scope="entry", sub="c1", jti="j1", door=None, orders=()):
    return Claims("k", "s1", sub, scope, jti, NOON, NOON + 300, None, door, tuple(orders), {})


def order(oid, status="pending", code="123456"):
    return {
        "id": oid,
        "status": status,
        "pickup_code": code,
        "items": [{"barcode": "690", "name": "可乐", "qty": 2, "shelf": "A3"}],
    }


def state(**kw) -> AccessState:
    return AccessState(**kw)


def test_entry_granted():
    d = decide_pass(claims(), POLICY, state(), NOON)
    assert d.granted and d.sub == "c1" and d.jti == "j1"


def test_verifier_rejections_pass_through():
    d = decide_pass(Rejected(Reason.EXPIRED, "old", sub="c1"), POLICY, state(), NOON)
    assert d.reason is Reason.EXPIRED and d.sub == "c1"


@pytest.mark.parametrize(
    ("c", "policy", "st", "want"),
    [
        (claims(door="back"), POLICY, state(), Reason.WRONG_DOOR),
        (
            claims(scope="entry"),
            DoorPolicy("front", frozenset({"pickup"}), ["00:00-24:00"], TZ),
            state(),
            Reason.WRONG_SCOPE,
        ),
        (claims(), POLICY, state(used_jti={"j1": NOON + 300}), Reason.REPLAYED),
        (claims(), POLICY, state(block_list={"c1"}), Reason.BLOCKED),
        (claims(), POLICY, state(lockdown={"front"}), Reason.LOCKDOWN),
        (claims(), POLICY, state(business_open=False), Reason.CLOSED),
        (claims(), DoorPolicy("front", POLICY.scopes, {"mon": []}, TZ), state(), Reason.CLOSED),
        (
            claims(),
            DoorPolicy("front", POLICY.scopes, ["00:00-24:00"], TZ, occupancy_limit=2),
            state(occupancy={"front": 2}),
            Reason.FULL,
        ),
        (claims("pickup", orders=["o9"]), POLICY, state(), Reason.UNKNOWN_ORDER),
        (
            claims("pickup", orders=["o1"]),
            POLICY,
            state(orders={"o1": order("o1", "picked_up")}),
            Reason.ALREADY_PICKED_UP,
        ),
        (
            claims("pickup", orders=["o1"]),
            POLICY,
            state(orders={"o1": order("o1", "cancelled")}),
            Reason.CANCELLED,
        ),
        (claims("staff"), POLICY, state(staff={"boss"}), Reason.WRONG_SCOPE),
    ],
)
def test_pass_denials(c, policy, st, want):
    assert decide_pass(c, policy, st, NOON).reason is want


def test_staff_pass_works_in_lockdown_closed_and_full():
    policy = DoorPolicy("front", POLICY.scopes, {"mon": []}, TZ, occupancy_limit=1)
    st = state(lockdown={"front"}, business_open=False, occupancy={"front": 5}, staff={"c1"})
    assert decide_pass(claims("staff"), policy, st, NOON).granted


def test_blocked_staff_is_still_blocked():
    assert (
        decide_pass(claims("staff"), POLICY, state(block_list={"c1"}), NOON).reason
        is Reason.BLOCKED
    )


def test_pickup_pass_lists_items_with_shelves_and_only_pending_orders():
    st = state(orders={"o1": order("o1"), "o2": order("o2", "picked_up", "222222")})
    d = decide_pass(claims("pickup", orders=["o1", "o2"]), POLICY, st, NOON)
    assert d.granted and d.orders == ("o1",)
    assert d.items[0]["shelf"] == "A3" and d.items[0]["order"] == "o1"
    assert "o2: picked_up" in d.detail


def test_pickup_pass_is_not_single_use_by_jti_but_by_order():
    st = state(used_jti={"j1": NOON}, orders={"o1": order("o1")})
    assert decide_pass(claims("pickup", orders=["o1"]), POLICY, st, NOON).granted


def test_couriers_may_pick_up_when_closed_unless_configured_otherwise():
    st = state(business_open=False, orders={"o1": order("o1")}, orders_by_code={"123456": "o1"})
    assert decide_code("123456", POLICY, st, NOON).granted
    strict = DoorPolicy("front", POLICY.scopes, ["00:00-24:00"], TZ, pickup_when_closed=False)
    assert decide_code("123456", strict, st, NOON).reason is Reason.CLOSED


@pytest.mark.parametrize(
    ("st", "want"),
    [
        (state(), Reason.UNKNOWN_ORDER),
        (state(orders={"o1": order("o1")}, orders_by_code={"123456": "o1"}), Reason.GRANTED),
        (
            state(orders={"o1": order("o1", "picked_up")}, orders_by_code={"123456": "o1"}),
            Reason.ALREADY_PICKED_UP,
        ),
        (
            state(orders={"o1": order("o1", "cancelled")}, orders_by_code={"123456": "o1"}),
            Reason.CANCELLED,
        ),
        (
            state(orders={"o1": order("o1")}, orders_by_code={"123456": "o1"}, lockdown={"front"}),
            Reason.LOCKDOWN,
        ),
        (
            state(
                orders={"o1": order("o1")},
                orders_by_code={"123456": "o1"},
                code_paused_until={"front": NOON + 1},
            ),
            Reason.RATE_LIMITED,
        ),
        (
            state(
                orders={"o1": order("o1")},
                orders_by_code={"123456": "o1"},
                code_paused_until={"front": NOON, "back": NOON + 60},
            ),
            Reason.GRANTED,
        ),
    ],
)
def test_pickup_codes(st, want):
    assert decide_code("123456", POLICY, st, NOON).reason is want


def test_entry_question_defers_the_grant():
    policy = DoorPolicy("front", POLICY.scopes, ["00:00-24:00"], TZ, has_question=True)
    d = decide_pass(claims(), policy, state(), NOON)
    assert d.granted and d.needs_answer
    assert d.with_reason(Reason.WRONG_ANSWER).reason is Reason.WRONG_ANSWER
