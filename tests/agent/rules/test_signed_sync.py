"""A hub-signed order-sync answer (agent/rules/signed_sync.py): taken only when signed
by a trusted key, for this store, fresh, and the answer to this very request."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.clock import Clock
from agent.rules.passes import PassVerifier, Rejected
from agent.rules.reasons import Reason
from agent.rules.signed_sync import (
    SYNC_SCOPE,
    SyncAnswer,
    looks_signed,
    next_high_water,
    verify_sync,
)
from cloud.signing import mint_pass, sign_command, sign_store_data

NOW = 1_800_000_000.0
HUB = Ed25519PrivateKey.generate()
VERIFIER = PassVerifier({"hub": HUB.public_key()}, skew_seconds=60)
NONCE = "n" * 32
ORDER = {"id": "mt-1", "pickup_code": "123456", "status": "pending"}


def answer(
    *, nonce: str = NONCE, status: Any = ("pending",), updated_after: Any = None, **kw: Any
) -> str:
    sync = {
        "orders": kw.pop("orders", [ORDER]),
        "now": "2027-01-15T08:00:00Z",
        "status": list(status),
        "updated_after": updated_after,
        "nonce": nonce,
    }
    args: dict[str, Any] = {"store": "s1", "scope": SYNC_SCOPE, "now": NOW} | kw
    key = args.pop("key", HUB)
    kid = args.pop("kid", "hub")
    claims = args.pop("claims", {"sync": sync})
    return sign_store_data(key, kid, claims=claims, **args)


def verify(token: str, *, now: float = NOW, high_water: float | None = None, **kw: Any):
    ask = {"nonce": NONCE, "status": ["pending"], "updated_after": None} | kw
    return verify_sync(VERIFIER, token, store="s1", now=now, high_water=high_water, **ask)


def reason(result: SyncAnswer | Rejected) -> str:
    return "taken" if isinstance(result, SyncAnswer) else str(result.reason)


def test_a_signed_answer_to_this_request_is_taken_with_its_signing_time() -> None:
    taken = verify(answer())
    assert isinstance(taken, SyncAnswer)
    assert taken.orders == [ORDER] and taken.iat == NOW and taken.kid == "hub"
    assert taken.now == "2027-01-15T08:00:00Z"
    cancelled = answer(status=["cancelled"], updated_after="2027-01-14T00:00:00Z")
    asked = {"status": ["cancelled"], "updated_after": "2027-01-14T00:00:00Z"}
    assert reason(verify(cancelled, **asked)) == "taken"


@pytest.mark.parametrize(
    ("token", "ask", "want"),
    [
        (answer(key=Ed25519PrivateKey.generate()), {}, Reason.BAD_SIGNATURE),
        (answer(kid="other"), {}, Reason.UNKNOWN_KEY),
        (answer(store="s2"), {}, Reason.WRONG_STORE),
        (answer(now=NOW - 3600), {}, Reason.EXPIRED),
        (answer(nonce="m" * 32), {}, Reason.REPLAYED),
        (answer(), {"status": ["cancelled"]}, Reason.REPLAYED),
        (answer(), {"updated_after": "2027-01-14T00:00:00Z"}, Reason.REPLAYED),
        (answer(scope="orders.other"), {}, Reason.WRONG_SCOPE),
        (answer(claims={}), {}, Reason.MALFORMED),
        (answer(orders={"id": "x"}), {}, Reason.MALFORMED),
        (
            mint_pass(HUB, "hub", store="s1", scope="entry", sub="c", now=NOW),
            {},
            Reason.WRONG_SCOPE,
        ),
        (
            sign_command(HUB, "hub", store="s1", cmd="orders.upsert", args={}, now=NOW),
            {},
            Reason.WRONG_SCOPE,
        ),
    ],
    ids=[
        "forged",
        "unknown-key",
        "other-store",
        "expired",
        "other-request",
        "other-status",
        "other-since",
        "other-scope",
        "no-sync-claim",
        "orders-not-a-list",
        "a-pass",
        "a-command",
    ],
)
def test_every_wrong_answer_is_refused_with_its_reason(
    token: str, ask: dict[str, Any], want: Reason
) -> None:
    result = verify(token, **ask)
    assert isinstance(result, Rejected) and result.reason == want, result


def test_an_answer_older_than_one_taken_is_a_replay_whatever_the_clock_says() -> None:
    # The agent's clock is stuck a day behind (a Pi that booted without NTP): an answer
    # signed an hour before the newest one taken is still refused.
    old = answer(now=NOW - 3600, nonce=NONCE)
    # (signed "in the future" for that clock, so refused before the mark is looked at)
    assert reason(verify(old, now=NOW - 86400, high_water=NOW)) in {"replayed", "not_yet_valid"}
    recent = answer(now=NOW - 300, ttl=600, nonce=NONCE)  # unexpired, older than the mark
    assert reason(verify(recent, high_water=NOW)) == "replayed"
    # A fresh one is "in the future" to that clock: the rule alone refuses it; the agent's
    # Clock believes the hub's signed time after a reboot (tests/security/test_clock_trust.py).
    assert reason(verify(answer(), now=NOW - 86400, high_water=NOW)) == "not_yet_valid"
    # Within the clock skew of the mark: two hubs' clocks may differ a little.
    assert reason(verify(answer(now=NOW - 30), high_water=NOW)) == "taken"


def test_the_high_water_mark_never_runs_ahead_of_the_agents_clock() -> None:
    assert next_high_water(None, NOW, NOW, 60) == NOW
    assert next_high_water(NOW, NOW - 10, NOW, 60) == NOW  # never backwards
    # A hub whose clock ran a day ahead must not lock out its own answers for a day.
    assert next_high_water(NOW, NOW + 86400, NOW, 60) == NOW + 60


@pytest.mark.parametrize(
    ("text", "signed"),
    [
        ("a.b.c", True),
        ('{"orders": []}', False),
        ("<html>hello</html>", False),
        ("a.b", False),
        ("a. b.c", False),
        ("", False),
    ],
)
def test_only_a_compact_jws_looks_signed(text: str, signed: bool) -> None:
    assert looks_signed(text) is signed


def test_an_answer_settles_the_clock_after_an_offline_boot_and_the_journal_says_by_what() -> None:
    """After a reboot the agent cannot know how long it was off; the first signed answer
    (fresh: it echoes this request's nonce) settles its clock, and the `clock.jumped`
    it causes names order sync, not a pass, so an operator knows what moved the time."""
    wall, mono, boot = [NOW - 86400.0], [500.0], ["boot-1"]
    before = Clock(wall=lambda: wall[0], mono=lambda: mono[0], boot_id=lambda: boot[0])
    before.observe_signed_time(NOW - 86400, "pass")
    saved, anchor = before.now(), before.anchor()
    # Off for a day; fake-hwclock brings the saved time back.
    mono[0], boot[0] = 3.0, "boot-2"
    clock = Clock(wall=lambda: wall[0], mono=lambda: mono[0], boot_id=lambda: boot[0])
    clock.restore(saved, anchor)
    clock.take_jumps()
    assert clock.doubts_before() == saved
    verifier = PassVerifier({"hub": HUB.public_key()}, skew_seconds=60, clock=clock)

    taken = verify_sync(
        verifier,
        answer(),
        store="s1",
        now=clock.now(),
        high_water=None,
        nonce=NONCE,
        status=["pending"],
        updated_after=None,
    )

    assert isinstance(taken, SyncAnswer), taken
    assert clock.doubts_before() is None and clock.now() == NOW
    jumps = [(j.status, j.source) for j in clock.take_jumps()]
    assert ("advanced", "order_sync") in jumps and ("advanced", "pass") not in jumps, jumps
