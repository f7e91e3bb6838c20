"""Generated attacks, all refused and nothing done (issue 11, "Prove it").

More than 10,000 generated passes and signed commands, each wrong in one way an attacker
at the door or on the broker would try: signed by a key the store does not trust (under
a trusted kid or an unknown one), `alg` none or HS256 keyed with the public key,
a flipped or cut signature, expired, not yet valid, issued in the future, living longer
than its scope allows, for another store, another scope, another issuer, another door,
or replayed. Each is refused with the reason the agent gives for it, through the real
verifier (agent/rules/passes.py), the real command runner with its journal
(agent/mqtt/commands.py), and the real door on the simulator's lock bus
(agent/services/access.py). Beside each batch a valid pass or command is accepted, so the
test fails if everything were refused. The number of cases checked is counted, not
assumed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.clock import Clock
from agent.journal import Journal
from agent.model.commands import Caller
from agent.mqtt.commands import CommandRunner
from agent.rules.passes import DOOR_SCOPES, Claims, PassVerifier, Rejected
from agent.rules.reasons import Reason
from storerules.lifetimes import MAX_LIFETIME_S
from tests.support.agent import Keys
from tests.support.inproc_agent import InprocAgent, write_agent_config
from tests.support.sim import SimHandle

STORE = "demo-001"
KID = "hub"
TRUSTED = Ed25519PrivateKey.generate()
ATTACKER = Ed25519PrivateKey.generate()
NOW = 1_790_000_000.0
SKEW = 60.0


def fast(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,  # every run explores afresh; nothing cached between runs
    )


PASS_EXAMPLES = 9_000
COMMAND_EXAMPLES = 2_500
DOOR_EXAMPLES = 150


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class Attack:
    kind: str
    token: str
    reasons: frozenset[str]  # what the agent may answer; never granted


def claims_for(scope: str, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "iss": "shopgate-hub",
        "aud": STORE,
        "sub": "visitor",
        "scope": scope,
        "jti": uuid.uuid4().hex,
        "iat": NOW,
        "exp": NOW + 300,
    }
    if scope == "pickup":
        body["orders"] = ["mt-1"]
    if scope == "ops":
        body |= {"cmd": "ping", "args": {}}
    return body | over


def sign(body: dict[str, Any], key: Ed25519PrivateKey = TRUSTED, kid: str = KID) -> str:
    return jwt.encode(body, key, algorithm="EdDSA", headers={"kid": kid})


def _flip(token: str, at: int) -> str:
    head, payload, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[at % len(raw)] ^= 1 << (at % 8)
    return f"{head}.{payload}.{b64(bytes(raw))}"


def _unsigned(body: dict[str, Any], alg: str) -> str:
    head = b64(json.dumps({"alg": alg, "typ": "JWT", "kid": KID}).encode())
    payload = b64(json.dumps(body).encode())
    if alg == "none":
        return f"{head}.{payload}."
    # HS256 keyed with the trusted public key: the classic algorithm-confusion forgery.
    secret = TRUSTED.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    mac = hmac.new(secret, f"{head}.{payload}".encode(), hashlib.sha256).digest()
    return f"{head}.{payload}.{b64(mac)}"


def attacks(scope: str, wrong_scope: str) -> st.SearchStrategy[Attack]:
    """One wrong token of `scope` (its valid form would be accepted)."""
    cap = MAX_LIFETIME_S[scope]
    secs = st.integers(min_value=int(SKEW) + 1, max_value=10 * 365 * 86400)
    text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=20)

    def one(kind: str, n: int, word: str) -> Attack:
        bad = frozenset({Reason.BAD_SIGNATURE})
        made: dict[str, Callable[[], Attack]] = {
            "forged": lambda: Attack(kind, sign(claims_for(scope), ATTACKER), bad),
            "unknown_kid": lambda: Attack(
                kind,
                sign(claims_for(scope), ATTACKER, kid=f"k{n}"),
                frozenset({Reason.UNKNOWN_KEY}),
            ),
            "alg_none": lambda: Attack(kind, _unsigned(claims_for(scope), "none"), bad),
            "alg_hs256": lambda: Attack(kind, _unsigned(claims_for(scope), "HS256"), bad),
            "bit_flipped": lambda: Attack(
                kind, _flip(sign(claims_for(scope)), n), bad | {Reason.MALFORMED}
            ),
            "truncated": lambda: Attack(
                kind,
                (t := sign(claims_for(scope)))[: n % (len(t) - 1)],
                frozenset({Reason.MALFORMED, Reason.BAD_SIGNATURE}),
            ),
            "expired": lambda: Attack(
                kind,
                sign(claims_for(scope, iat=NOW - n - 300, exp=NOW - n)),
                frozenset({Reason.EXPIRED}),
            ),
            "not_yet_valid": lambda: Attack(
                kind, sign(claims_for(scope, nbf=NOW + n)), frozenset({Reason.NOT_YET_VALID})
            ),
            "iat_in_future": lambda: Attack(
                kind,
                sign(claims_for(scope, iat=NOW + n, exp=NOW + n + 60)),
                frozenset({Reason.NOT_YET_VALID}),
            ),
            "over_lifetime": lambda: Attack(
                kind,
                sign(claims_for(scope, exp=NOW + cap + n)),
                frozenset({Reason.MALFORMED}),
            ),
            "wrong_store": lambda: Attack(
                kind,
                sign(claims_for(scope, aud=f"{STORE}{word}" if word != STORE else "x")),
                frozenset({Reason.WRONG_STORE}),
            ),
            "wrong_scope": lambda: Attack(
                kind, sign(claims_for(wrong_scope)), frozenset({Reason.WRONG_SCOPE})
            ),
            "wrong_issuer": lambda: Attack(
                kind, sign(claims_for(scope, iss=word)), frozenset({Reason.MALFORMED})
            ),
            "bad_claim": lambda: Attack(
                kind,
                sign(claims_for(scope, exp=word)),
                frozenset({Reason.MALFORMED}),
            ),
        }
        return made[kind]()

    kinds = st.sampled_from(
        [
            "forged",
            "unknown_kid",
            "alg_none",
            "alg_hs256",
            "bit_flipped",
            "truncated",
            "expired",
            "not_yet_valid",
            "iat_in_future",
            "over_lifetime",
            "wrong_store",
            "wrong_scope",
            "wrong_issuer",
            "bad_claim",
        ]
    )
    return st.builds(one, kinds, secs, text)


def verifier(clock: Clock | None = None) -> PassVerifier:
    return PassVerifier({KID: TRUSTED.public_key()}, skew_seconds=SKEW, clock=clock)


def test_generated_bad_passes_are_all_refused_with_their_reason() -> None:
    check = verifier()
    seen: Counter[str] = Counter()
    for scope in ("entry", "pickup", "staff"):
        valid = check.verify(sign(claims_for(scope)), store=STORE, now=NOW)
        assert isinstance(valid, Claims), valid  # the control: a good pass goes through

    @fast(PASS_EXAMPLES)
    @given(st.sampled_from(["entry", "pickup", "staff"]).flatmap(lambda s: attacks(s, "ops")))
    def refused(attack: Attack) -> None:
        got = check.verify(attack.token, store=STORE, now=NOW, scopes=DOOR_SCOPES)
        assert isinstance(got, Rejected), (attack.kind, got)
        assert got.reason in attack.reasons, (attack.kind, got)
        seen[attack.kind] += 1

    refused()
    assert sum(seen.values()) >= PASS_EXAMPLES * 0.95, seen
    assert len(seen) == 14, seen  # every kind of attack was tried


async def _ok(cmd: str, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
    return {}


def test_generated_bad_commands_are_refused_and_nothing_runs(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    ran: list[str] = []

    async def handle(cmd: str, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        ran.append(caller.jti)
        return {}

    # Frozen: an attack 61 s ahead must stay ahead however long the run takes.
    clock = Clock(wall=lambda: NOW, mono=lambda: 50.0)
    journal = loop.run_until_complete(Journal.open(tmp_path / "journal.db", STORE, clock))
    runner = CommandRunner(
        store=STORE,
        journal=journal,
        verifier=verifier(),
        clock=clock,
        handle=handle,
        skew_seconds=SKEW,
    )
    seen: Counter[str] = Counter()
    try:
        good = sign(claims_for("ops"))
        assert loop.run_until_complete(runner.run(good)).ok and len(ran) == 1  # the control

        @fast(COMMAND_EXAMPLES)
        @given(
            st.one_of(
                attacks("ops", "entry"),
                st.just(Attack("replayed", good, frozenset({Reason.REPLAYED}))),
            )
        )
        def refused(attack: Attack) -> None:
            before = len(ran)
            outcome = loop.run_until_complete(runner.run(attack.token))
            assert not outcome.ok and outcome.code in attack.reasons, (attack.kind, outcome)
            assert len(ran) == before  # nothing executed
            seen[attack.kind] += 1

        refused()
    finally:
        loop.run_until_complete(journal.close())
        loop.close()
    assert sum(seen.values()) >= COMMAND_EXAMPLES * 0.9, seen
    assert seen["replayed"] > 0 and len(seen) == 15, seen
    assert ran == [jwt.decode(good, options={"verify_signature": False})["jti"]]


# --- at the door, on the simulator's lock bus ------------------------------------------


@pytest.fixture
async def store(tmp_path: Path, sim: SimHandle, keys: Keys) -> AsyncIterator[InprocAgent]:
    def edit(cfg: dict[str, Any]) -> None:
        # A second door, so a pass bound to it can be shown at the front door.
        cfg["doors"].append(
            {
                "id": "back",
                "lock": {"type": "lockboard", "device": "lockbus-1", "board": 1, "channel": 2},
                "contact": {"type": "lock_feedback"},
                "unlock_seconds": 5,
            }
        )

    config = write_agent_config(tmp_path, sim, edit)
    running = await InprocAgent.start(
        config, sim, ready=lambda a: a.device_online.get("lockbus-1") is True
    )
    try:
        yield running
    finally:
        await running.stop()


async def test_generated_bad_passes_at_the_door_open_nothing(
    store: InprocAgent, keys: Keys
) -> None:
    """Through the door service on the real lock bus: nothing opens, nothing is granted."""
    import random
    import time

    rng = random.Random(11)
    key, kid = keys.key, keys.kid
    now = time.time()

    def body(**over: Any) -> dict[str, Any]:
        base = claims_for("entry") | {"iat": now, "exp": now + 300}
        return base | over

    makers: dict[str, Callable[[int], str]] = {
        "forged": lambda n: sign(body(), ATTACKER, kid),
        "alg_none": lambda n: _unsigned(body(), "none"),
        "bit_flipped": lambda n: _flip(sign(body(), key, kid), n),
        "expired": lambda n: sign(body(iat=now - 900 - n, exp=now - 600 - n), key, kid),
        "iat_in_future": lambda n: sign(body(iat=now + 600 + n, exp=now + 900 + n), key, kid),
        "wrong_store": lambda n: sign(body(aud=f"other-{n}"), key, kid),
        "wrong_scope": lambda n: sign(claims_for("ops") | {"iat": now, "exp": now + 60}, key, kid),
        "wrong_door": lambda n: sign(body(door="back"), key, kid),
        "over_lifetime": lambda n: sign(body(exp=now + 7 * 3600 + n), key, kid),
    }
    access = store.agent.store.access
    bus = "/lockbus/lockbus-1"
    unlocks_before = (await store.sim_get(bus))["boards"]["1"]["1"]["unlock_count"]
    seen: Counter[str] = Counter()
    for _ in range(DOOR_EXAMPLES):
        kind = rng.choice(sorted(makers))
        decision = await access.on_scan("front", makers[kind](rng.randrange(1 << 20)))
        assert not decision.granted, (kind, decision)
        seen[kind] += 1
    await store.settle()
    assert store.events("access.granted") == []
    assert (await store.sim_get(bus))["boards"]["1"]["1"]["unlock_count"] == unlocks_before
    assert len(seen) == len(makers)
    # the control: a good pass still opens (the attacks did not lock the door for good)
    good = keys.mint(scope="entry", sub="control")
    assert (await access.on_scan("front", good)).granted
    replay = await access.on_scan("front", good)
    assert not replay.granted and replay.reason == Reason.REPLAYED
    assert sum(seen.values()) + PASS_EXAMPLES * 0.95 + COMMAND_EXAMPLES * 0.9 >= 10_000
