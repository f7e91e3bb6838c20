"""Passes against time: `iat` in the future, lifetimes over the scope's cap, and what a
verified pass tells the agent's clock (agent/rules/passes.py, agent/clock.py)."""

from __future__ import annotations

import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.clock import Clock
from agent.rules.passes import Claims, PassVerifier, Rejected
from agent.rules.reasons import Reason
from storerules.lifetimes import MAX_LIFETIME_S

NOW = 1_800_000_000
KEY = Ed25519PrivateKey.generate()


def token(**claims: Any) -> str:
    """Signed with the hub's key, claims as given (the hub's own minting refuses odd ones)."""
    body: dict[str, Any] = {
        "iss": "shopgate-hub",
        "aud": "s1",
        "sub": "cust-1",
        "scope": "entry",
        "jti": uuid.uuid4().hex,
        "iat": NOW,
        "exp": NOW + 300,
    } | claims
    if body["scope"] == "pickup":
        body.setdefault("orders", ["o1"])
    return jwt.encode(body, KEY, algorithm="EdDSA", headers={"kid": "hub"})


def verifier(clock: Clock | None = None, **kw: Any) -> PassVerifier:
    return PassVerifier({"hub": KEY.public_key()}, skew_seconds=60, clock=clock, **kw)


def reason(tok: str, v: PassVerifier | None = None, now: float = NOW, **kw: Any) -> Reason:
    r = (v or verifier()).verify(tok, store="s1", now=now, **kw)
    return Reason.GRANTED if isinstance(r, Claims) else r.reason


def detail(tok: str, v: PassVerifier | None = None, now: float = NOW) -> str:
    r = (v or verifier()).verify(tok, store="s1", now=now)
    assert isinstance(r, Rejected)
    return r.detail


class FakeTime:
    def __init__(self, wall: float = NOW) -> None:
        self.wall_now, self.mono_now = float(wall), 100.0

    def clock(self, lkg: float | None = None, boot: str = "b1") -> Clock:
        return Clock(
            lkg, wall=lambda: self.wall_now, mono=lambda: self.mono_now, boot_id=lambda: boot
        )


def test_a_pass_issued_in_the_future_is_not_yet_valid() -> None:
    assert reason(token(iat=NOW + 61, exp=NOW + 361)) is Reason.NOT_YET_VALID
    assert "in the future" in detail(token(iat=NOW + 3600, exp=NOW + 3900))
    assert reason(token(iat=NOW + 59, exp=NOW + 359)) is Reason.GRANTED  # within the skew


@pytest.mark.parametrize("scope", ["entry", "pickup", "staff"])
def test_a_pass_may_live_as_long_as_its_scope_allows_and_no_longer(scope: str) -> None:
    cap = MAX_LIFETIME_S[scope]
    assert reason(token(scope=scope, exp=NOW + cap)) is Reason.GRANTED
    assert reason(token(scope=scope, exp=NOW + cap + 1)) is Reason.MALFORMED
    assert f"access.max_lifetime_seconds.{scope}" in detail(token(scope=scope, exp=NOW + cap + 1))


def test_a_store_may_lower_a_cap() -> None:
    v = verifier(max_lifetime=dict(MAX_LIFETIME_S) | {"entry": 600})
    assert reason(token(exp=NOW + 600), v) is Reason.GRANTED
    assert reason(token(exp=NOW + 601), v) is Reason.MALFORMED


def test_a_command_lives_an_hour_at_most() -> None:
    ops = frozenset({"ops"})
    assert reason(token(scope="ops", exp=NOW + 3600), scopes=ops) is Reason.GRANTED
    assert reason(token(scope="ops", exp=NOW + 3601), scopes=ops) is Reason.MALFORMED


def test_exp_before_iat_is_malformed() -> None:
    assert reason(token(iat=NOW, exp=NOW)) is Reason.MALFORMED
    assert detail(token(iat=NOW + 10, exp=NOW + 5)) == "exp is not after iat"


@pytest.mark.parametrize("claim", ["iat", "exp", "nbf"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_time_that_is_not_a_finite_number_is_malformed(claim: str, value: float) -> None:
    # PyJWT writes these as NaN / Infinity, which Python's JSON parser reads back.
    assert reason(token(**{claim: value})) is Reason.MALFORMED


def test_a_verified_pass_tells_the_clock_the_hubs_time() -> None:
    t = FakeTime(wall=NOW - 3600)  # booted an hour behind, wall clock and all
    clock = t.clock(lkg=NOW - 3600, boot="b2")
    v = verifier(clock)
    assert reason(token(iat=NOW - 20, exp=NOW + 280), v, now=clock.now()) is Reason.GRANTED
    assert clock.now() == NOW - 20
    advanced, behind = clock.take_jumps()
    assert (advanced.status, advanced.source) == ("advanced", "pass")
    assert behind.status == "refused"  # and the wall clock is now known to be behind


def test_only_a_pass_good_but_for_time_moves_the_clock() -> None:
    t = FakeTime(wall=NOW - 3600)
    clock = t.clock(lkg=NOW - 3600, boot="b2")  # unsettled: it would believe any hub time
    v = verifier(clock)
    for bad in (
        token(aud="s2", iat=NOW, exp=NOW + 300),
        token(scope="ops", iat=NOW, exp=NOW + 300),
        token(iat=NOW, exp=NOW + 10 * 365 * 86400),
    ):
        assert reason(bad, v, now=clock.now()) is not Reason.GRANTED
    assert clock.now() == NOW - 3600


def test_after_a_reboot_a_pass_from_before_it_is_expired_until_the_hub_settles_the_clock() -> None:
    t = FakeTime(wall=NOW + 100)  # fake-hwclock: the time saved at shutdown
    clock = t.clock(lkg=NOW + 100, boot="b2")
    v = verifier(clock)
    old = token(iat=NOW, exp=NOW + 3600)
    assert reason(old, v, now=clock.now()) is Reason.EXPIRED
    assert "restarted" in detail(old, v, now=clock.now())
    fresh = token(iat=NOW + 600, exp=NOW + 900)  # minted while the Pi was off
    assert reason(fresh, v, now=clock.now()) is Reason.GRANTED
    assert clock.doubts_before() is None
    assert reason(old, v, now=clock.now()) is Reason.GRANTED  # its life is checked again


def test_a_settled_clock_is_not_moved_by_a_pass_far_ahead() -> None:
    t = FakeTime()
    clock = t.clock()
    v = verifier(clock)
    assert reason(token(), v, now=clock.now()) is Reason.GRANTED  # settles it
    ahead = token(iat=NOW + 86400, exp=NOW + 86400 + 300)
    assert reason(ahead, v, now=clock.now()) is Reason.NOT_YET_VALID
    assert clock.now() == NOW
