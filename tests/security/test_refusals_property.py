"""Generated attacks, all refused and nothing done (issue 11, "Prove it").

More than 10,000 generated passes and signed commands, each wrong in one way an attacker
at the door or on the broker would try: signed by a key the store does not trust (under
a trusted kid or an unknown one), by a key a `keys.set` once installed and the config
has since revoked (or one installed through it), `alg` none or HS256 keyed with the
public key, a flipped or cut signature, expired, not yet valid, issued in the future,
living longer than its scope allows, for another store, another scope, another issuer,
another door, or replayed. Each is refused with the reason the agent gives for it:

- the bulk through the real verifier (agent/rules/passes.py) with the keys the real
  key-trust rules leave (agent/rules/key_trust.py), then the door's real decision
  (agent/rules/decide.py, what agent/services/access.py runs on a scanned pass);
- commands through the real command runner with its journal (agent/mqtt/commands.py);
- a smaller number through the running agent: scanned at the door (agent/services/
  access.py) and signed `unlock` commands run by the store's real command handler
  (agent/remote/commands.py), on the simulator's lock bus, whose unlock count must not
  move.

Beside each batch a valid pass or command is accepted, so the test fails if everything
were refused. Each test counts the cases it checked and asserts its floor; the floors
add up to more than 10,000 (asserted below), so the number is proven, not assumed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import random
import time
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
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from agent.clock import Clock
from agent.journal import Journal
from agent.journal.view import JournalView
from agent.model.commands import Caller
from agent.mqtt.commands import CommandRunner
from agent.remote.commands import StoreCommands
from agent.rules.decide import AccessState, DoorPolicy, decide_pass
from agent.rules.key_trust import Trust, install, pem_of, resolve
from agent.rules.passes import DOOR_SCOPES, Claims, PassVerifier, Rejected
from agent.rules.reasons import Reason
from storerules.lifetimes import MAX_LIFETIME_S
from tests.support.agent import Keys
from tests.support.inproc_agent import InprocAgent, write_agent_config
from tests.support.sim import SimHandle

STORE = "demo-001"
KID = "hub"
TRUSTED = Ed25519PrivateKey.generate()  # the anchor: the config's access.keys
ATTACKER = Ed25519PrivateKey.generate()  # trusted by nobody
LEAKED = Ed25519PrivateKey.generate()  # installed by keys.set, then revoked in the config
CHILD = Ed25519PrivateKey.generate()  # installed by a keys.set that LEAKED signed
NOW = 1_790_000_000.0
SKEW = 60.0

PASS_EXAMPLES, PASS_FLOOR = 7_800, 7_600
COMMAND_EXAMPLES, COMMAND_FLOOR = 2_400, 2_300
DOOR_PASSES = 120
DOOR_COMMANDS = 80
# Every test asserts its floor; together they are the 10,000.
assert PASS_FLOOR + COMMAND_FLOOR + DOOR_PASSES + DOOR_COMMANDS >= 10_000


def fast(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,  # every run explores afresh; nothing cached between runs
        phases=[Phase.generate, Phase.shrink],  # no explicit examples, no replay
    )


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class Attack:
    kind: str
    token: str
    reasons: frozenset[str]  # what the agent may answer; never granted


def claims_for(scope: str, now: float = NOW, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "iss": "shopgate-hub",
        "aud": STORE,
        "sub": "visitor",
        "scope": scope,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 300,
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


def _unsigned(body: dict[str, Any], alg: str, kid: str = KID) -> str:
    head = b64(json.dumps({"alg": alg, "typ": "JWT", "kid": kid}).encode())
    payload = b64(json.dumps(body).encode())
    if alg == "none":
        return f"{head}.{payload}."
    # HS256 keyed with the trusted public key: the classic algorithm-confusion forgery.
    secret = TRUSTED.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    mac = hmac.new(secret, f"{head}.{payload}".encode(), hashlib.sha256).digest()
    return f"{head}.{payload}.{b64(mac)}"


# --- the keys the store trusts, by the real key-trust rules -----------------------------


def _trust(revoked: list[str]) -> Trust:
    """The config anchors TRUSTED. A keys.set signed by it installed LEAKED; a keys.set
    signed by LEAKED installed LEAKED and CHILD. Then the config revokes `revoked`."""
    anchors = {KID: TRUSTED.public_key()}
    first = install(
        resolve(anchors, [], []),
        KID,
        [{"kid": "leaked", "pem": pem_of(LEAKED.public_key())}],
        by="ops",
        at="2026-01-01T00:00:00Z",
    )
    second = install(
        resolve(anchors, [], [k.to_json() for k in first]),
        "leaked",
        [
            {"kid": "leaked", "pem": pem_of(LEAKED.public_key())},
            {"kid": "child", "pem": pem_of(CHILD.public_key())},
        ],
        by="thief",
        at="2026-01-02T00:00:00Z",
    )
    return resolve(anchors, revoked, [k.to_json() for k in second])


BEFORE_REVOCATION = _trust([])
TRUST = _trust(["leaked"])


def verifier(trust: Trust = TRUST) -> PassVerifier:
    return PassVerifier(trust.keys, skew_seconds=SKEW)


def test_the_revocation_is_what_refuses_the_installed_keys() -> None:
    """The control for the revoked kinds below: before the config revoked it, the leaked
    key (and the key it installed) opened; after, neither is trusted."""
    for key, kid in ((LEAKED, "leaked"), (CHILD, "child")):
        token = sign(claims_for("entry"), key, kid)
        assert isinstance(verifier(BEFORE_REVOCATION).verify(token, store=STORE, now=NOW), Claims)
        refused = verifier(TRUST).verify(token, store=STORE, now=NOW)
        assert isinstance(refused, Rejected) and refused.reason == Reason.UNKNOWN_KEY
    assert {(d.kid, d.reason) for d in TRUST.dropped} == {
        ("leaked", "revoked"),
        ("child", "revoked"),
    }


# --- the generated attacks --------------------------------------------------------------

KINDS = (
    "forged",
    "unknown_kid",
    "revoked_kid",
    "installed_through_revoked",
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
)
DOOR_ONLY = ("wrong_door", "replayed")  # decided by the door, not the verifier
CMD_KINDS = (*KINDS, "replayed")
USED_JTI = "used-" + uuid.uuid4().hex
# Text an attacker might put in a claim: ASCII, CJK, NUL, quotes, spaces (cheap to draw).
WORDS = st.text(alphabet="aZ0-_. é中门\x00\"'\\", min_size=1, max_size=12)
SECS = st.integers(min_value=int(SKEW) + 1, max_value=10 * 365 * 86400)


def make_attack(scope: str, wrong_scope: str, kind: str, n: int, word: str) -> Attack:
    """One token of `scope`, wrong in the way `kind` says (its valid form is accepted)."""
    cap = MAX_LIFETIME_S[scope]
    bad = frozenset({Reason.BAD_SIGNATURE})
    unknown = frozenset({Reason.UNKNOWN_KEY})
    made: dict[str, Callable[[], Attack]] = {
        "forged": lambda: Attack(kind, sign(claims_for(scope), ATTACKER), bad),
        "unknown_kid": lambda: Attack(kind, sign(claims_for(scope), ATTACKER, f"k{n}"), unknown),
        "revoked_kid": lambda: Attack(kind, sign(claims_for(scope), LEAKED, "leaked"), unknown),
        "installed_through_revoked": lambda: Attack(
            kind, sign(claims_for(scope), CHILD, "child"), unknown
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
            kind, sign(claims_for(scope, exp=NOW + cap + n)), frozenset({Reason.MALFORMED})
        ),
        "wrong_store": lambda: Attack(
            kind,
            sign(claims_for(scope, aud=STORE + word if word.strip() else "x")),
            frozenset({Reason.WRONG_STORE}),
        ),
        "wrong_scope": lambda: Attack(
            kind, sign(claims_for(wrong_scope)), frozenset({Reason.WRONG_SCOPE})
        ),
        "wrong_issuer": lambda: Attack(
            kind, sign(claims_for(scope, iss=word)), frozenset({Reason.MALFORMED})
        ),
        "bad_claim": lambda: Attack(
            kind, sign(claims_for(scope, exp=word)), frozenset({Reason.MALFORMED})
        ),
        # At the door: a pass bound to another door, a pass already used (a pickup pass
        # is used per order: its order is picked up already).
        "wrong_door": lambda: Attack(
            kind, sign(claims_for(scope, door=f"back{word}")), frozenset({Reason.WRONG_DOOR})
        ),
        "replayed": lambda: Attack(
            kind,
            sign(claims_for(scope, jti=USED_JTI, orders=["mt-done"]))
            if scope == "pickup"
            else sign(claims_for(scope, jti=USED_JTI)),
            frozenset({Reason.ALREADY_PICKED_UP if scope == "pickup" else Reason.REPLAYED}),
        ),
    }
    return made[kind]()


def _door() -> tuple[DoorPolicy, AccessState]:
    from zoneinfo import ZoneInfo

    policy = DoorPolicy(
        door="front",
        scopes=DOOR_SCOPES,
        hours=["00:00-24:00"],
        timezone=ZoneInfo("Asia/Shanghai"),
    )
    state = AccessState(
        used_jti={USED_JTI: NOW + 300},
        orders={
            "mt-1": {"id": "mt-1", "status": "pending", "items": []},
            "mt-done": {"id": "mt-done", "status": "picked_up", "items": []},
        },
    )
    return policy, state


def test_generated_bad_passes_are_all_refused_with_their_reason() -> None:
    """Verified and decided as the door service does with a scanned pass."""
    check = verifier()
    policy, state = _door()

    def at_the_door(token: str) -> str:
        verified = check.verify(token, store=STORE, now=NOW, scopes=DOOR_SCOPES)
        return decide_pass(verified, policy, state, NOW).reason

    for scope in ("entry", "pickup", "staff"):  # the control: a good pass goes through
        assert at_the_door(sign(claims_for(scope))) == Reason.GRANTED, scope
        assert at_the_door(sign(claims_for(scope, door="front"))) == Reason.GRANTED, scope

    seen: Counter[str] = Counter()

    @fast(PASS_EXAMPLES)
    @given(st.sampled_from(sorted(DOOR_SCOPES)), st.sampled_from(KINDS + DOOR_ONLY), SECS, WORDS)
    def refused(scope: str, kind: str, n: int, word: str) -> None:
        attack = make_attack(scope, "ops", kind, n, word)
        reason = at_the_door(attack.token)
        assert reason in attack.reasons, (attack, reason)
        seen[kind] += 1

    refused()
    assert sum(seen.values()) >= PASS_FLOOR, seen
    assert set(seen) == set(KINDS + DOOR_ONLY), seen  # every kind of attack was tried


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
        @given(st.sampled_from(CMD_KINDS), SECS, WORDS)
        def refused(kind: str, n: int, word: str) -> None:
            if kind == "replayed":
                attack = Attack(kind, good, frozenset({Reason.REPLAYED}))
            else:
                attack = make_attack("ops", "entry", kind, n, word)
            before = len(ran)
            outcome = loop.run_until_complete(runner.run(attack.token))
            assert not outcome.ok and outcome.code in attack.reasons, (attack, outcome)
            assert len(ran) == before  # nothing executed
            seen[kind] += 1

        refused()
    finally:
        loop.run_until_complete(journal.close())
        loop.close()
    assert sum(seen.values()) >= COMMAND_FLOOR, seen
    assert set(seen) == set(CMD_KINDS), seen
    assert ran == [jwt.decode(good, options={"verify_signature": False})["jti"]]
    # Only the control reached the journal as a command to run.
    received = JournalView(tmp_path / "journal.db").events("command.received")
    assert [e["data"]["jti"] for e in received] == ran


# --- the running agent, on the simulator's lock bus -------------------------------------


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


def _real_makers(
    scope: str, key: Ed25519PrivateKey, kid: str, now: float, extra: dict[str, Any]
) -> dict[str, tuple[Callable[[int], str], frozenset[str]]]:
    """Attacks on the running agent (its clock is the real one), with their reasons."""

    def body(**over: Any) -> dict[str, Any]:
        return claims_for(scope, now) | extra | over

    other = "ops" if scope != "ops" else "entry"
    cap = MAX_LIFETIME_S[scope]
    one = frozenset
    return {
        "forged": (lambda n: sign(body(), ATTACKER, kid), one({Reason.BAD_SIGNATURE})),
        "unknown_kid": (lambda n: sign(body(), ATTACKER, f"k{n}"), one({Reason.UNKNOWN_KEY})),
        # An empty signature is not even pass-shaped to the scanner's dispatch: malformed.
        "alg_none": (
            lambda n: _unsigned(body(), "none", kid),
            one({Reason.BAD_SIGNATURE, Reason.MALFORMED}),
        ),
        "alg_hs256": (lambda n: _unsigned(body(), "HS256", kid), one({Reason.BAD_SIGNATURE})),
        "bit_flipped": (
            lambda n: _flip(sign(body(), key, kid), n),
            one({Reason.BAD_SIGNATURE, Reason.MALFORMED}),
        ),
        "expired": (
            lambda n: sign(body(iat=now - 900 - n, exp=now - 600 - n), key, kid),
            one({Reason.EXPIRED}),
        ),
        "iat_in_future": (
            lambda n: sign(body(iat=now + 600 + n, exp=now + 900 + n), key, kid),
            one({Reason.NOT_YET_VALID}),
        ),
        "wrong_store": (
            lambda n: sign(body(aud=f"other-{n}"), key, kid),
            one({Reason.WRONG_STORE}),
        ),
        "wrong_scope": (
            lambda n: sign(claims_for(other, now) | {"exp": now + 60}, key, kid),
            one({Reason.WRONG_SCOPE}),
        ),
        "over_lifetime": (
            lambda n: sign(body(exp=now + cap + 60 + n), key, kid),
            one({Reason.MALFORMED}),
        ),
    }


async def test_generated_bad_passes_and_commands_open_nothing_on_the_running_agent(
    store: InprocAgent, keys: Keys
) -> None:
    """Scanned at the front door and sent as signed `unlock` commands to the store's real
    command handler: nothing opens, nothing is granted, no command runs."""
    rng = random.Random(11)
    agent = store.agent
    assert agent.journal is not None and agent.store is not None
    access = agent.store.access
    runner = CommandRunner(  # as the MQTT transport builds it (agent/mqtt/client.py)
        store=STORE,
        journal=agent.journal,
        verifier=agent.verifier,
        clock=agent.clock,
        handle=StoreCommands(agent),
        skew_seconds=agent.cfg.access.clock_skew_seconds,
    )
    bus = "/lockbus/lockbus-1"

    async def unlocks() -> int:
        return int((await store.sim_get(bus))["boards"]["1"]["1"]["unlock_count"])

    now = time.time()
    start = await unlocks()
    # The controls first: a good pass and a good unlock command open the front door...
    good_pass = keys.mint(scope="entry", sub="control")
    assert (await access.on_scan("front", good_pass)).granted
    unlock = {"cmd": "unlock", "args": {"door": "front"}}
    good_cmd = sign(claims_for("ops", now, sub="operator") | unlock, keys.key, keys.kid)
    ok = await runner.run(good_cmd)
    await runner.record(ok)
    assert ok.ok, ok
    await store.settle()
    opened = await unlocks()
    assert opened == start + 2

    # ...then the attacks, the replays of those controls among them.
    door_makers = _real_makers("entry", keys.key, keys.kid, now, {})
    door_makers["wrong_door"] = (
        lambda n: sign(claims_for("entry", now, door="back"), keys.key, keys.kid),
        frozenset({Reason.WRONG_DOOR}),
    )
    door_makers["replayed"] = (lambda n: good_pass, frozenset({Reason.REPLAYED}))
    seen: Counter[str] = Counter()
    for _ in range(DOOR_PASSES):
        kind = rng.choice(sorted(door_makers))
        make, reasons = door_makers[kind]
        decision = await access.on_scan("front", make(rng.randrange(1 << 20)))
        assert not decision.granted and decision.reason in reasons, (kind, decision)
        seen[f"pass.{kind}"] += 1

    cmd_makers = _real_makers("ops", keys.key, keys.kid, now, unlock)
    cmd_makers["replayed"] = (lambda n: good_cmd, frozenset({Reason.REPLAYED}))
    for _ in range(DOOR_COMMANDS):
        kind = rng.choice(sorted(cmd_makers))
        make, reasons = cmd_makers[kind]
        outcome = await runner.run(make(rng.randrange(1 << 20)))
        await runner.record(outcome)
        assert not outcome.ok and outcome.code in reasons, (kind, outcome)
        seen[f"command.{kind}"] += 1

    await store.settle()
    assert sum(seen.values()) == DOOR_PASSES + DOOR_COMMANDS
    assert len(seen) == len(door_makers) + len(cmd_makers), seen  # every kind was tried
    assert await unlocks() == opened  # the lock never moved for an attack
    # Granted: the control pass, and the control command's remote unlock; nothing else.
    assert [e["data"]["sub"] for e in store.events("access.granted")] == ["control", "operator"]
    assert [e["data"]["jti"] for e in store.events("command.received")] == [ok.id]
    assert len(store.events("command.refused")) == DOOR_COMMANDS
    assert len(store.events("door.unlocked")) == 2  # the two controls
    # The attacks did not lock the door for good: a fresh pass still opens.
    assert (await access.on_scan("front", keys.mint(scope="entry", sub="after"))).granted
