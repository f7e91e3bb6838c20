"""Attacks on the agent's sense of time (issue 11, item 8), against a running agent.

The agent runs in-process on a GPIO door (mock pins), with its real journal and real
wiring; only the two OS clocks it reads are fake, so the tests can jump years without a
sleep. Each test is an attack that worked before the clock learned whom to trust:

- one spoofed NTP reply of +10 years made every pass `expired`, and the journal saved the
  spoofed time, so the store stayed locked after NTP was right again and after a restart;
- a Pi booting offline (no battery clock: fake-hwclock restores the time it saved at
  shutdown) resumed at its saved time and let in a pass that had expired while it was off;
- a pass issued a year in the future with a three-year lifetime opened the door.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

import agent.app
from agent.app import Agent
from agent.clock import Clock
from agent.config import load_config
from agent.journal.view import JournalView
from agent.rules.passes import Claims, PassVerifier, Rejected
from runtime.systemd import Notifier
from storerules.lifetimes import MAX_LIFETIME_S
from tests.support.agent import Keys, make_keys

YEAR = 365 * 86400.0
HUB_KEY = Keys(Ed25519PrivateKey.generate(), "demo")
T0 = float(int(time.time()))  # the true time when each test begins


class FakeTime:
    """The two OS clocks the agent reads: the wall clock (settable by NTP, by
    fake-hwclock at boot, by an attacker) and the monotonic clock (restarts at boot)."""

    def __init__(self, wall: float = T0, mono: float = 1000.0) -> None:
        self.wall_now, self.mono_now = wall, mono

    def wall(self) -> float:
        return self.wall_now

    def mono(self) -> float:
        return self.mono_now

    def advance(self, seconds: float) -> None:
        self.wall_now += seconds
        self.mono_now += seconds

    def reboot(self, *, wall: float) -> None:
        """The Pi was off (for however long: nothing on it counts); at boot its wall
        clock reads `wall` and its monotonic clock starts again."""
        self.wall_now, self.mono_now = wall, 3.0


def door_config(tmp: Path) -> Path:
    make_keys(tmp)
    cfg = {
        "store": {"id": "demo-001", "timezone": "Asia/Shanghai"},
        "storage": {"dir": "agent"},
        "access": {"keys": [{"kid": "demo", "pem_file": "keys/hub-signing.pub.pem"}]},
        "hub": {"url": "http://127.0.0.1:9"},
        "mqtt": {"url": "mqtt://127.0.0.1:9", "enabled": False},
        "devices": [{"id": "gpio", "kind": "gpio", "pin_factory": "mock"}],
        "doors": [{"id": "back", "lock": {"type": "gpio", "device": "gpio", "pin": 17}}],
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
async def store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[FakeTime, Keys, Callable[[], Any]]]:
    """(fake OS clocks, the hub's keys, start()) where start() (re)starts the agent."""
    t = FakeTime()
    # The agent builds its Clock from the OS clocks; these are the fake ones.
    monkeypatch.setattr(
        agent.app, "Clock", lambda *a, **kw: Clock(*a, wall=t.wall, mono=t.mono, **kw)
    )
    config = door_config(tmp_path)
    keys = make_keys(tmp_path)
    running: list[Agent] = []

    async def start() -> Agent:
        for a in running:
            await a.stop()
        running.clear()
        a = Agent(config, load_config(config), Notifier(None))
        await a.start()
        running.append(a)
        return a

    try:
        yield t, keys, start
    finally:
        for a in running:
            await a.stop()


async def scan(a: Agent, token: str) -> str:
    return str((await a.store.access.on_scan("back", token)).reason)


def entry_pass(keys: Keys, issued: float, ttl: int = 300) -> str:
    return keys.mint(scope="entry", sub=f"cust-{uuid.uuid4().hex[:6]}", ttl=ttl, now=issued)


def forged(keys: Keys, **claims: Any) -> str:
    """A pass signed with the hub's real key but claims the hub's minting would refuse."""
    body = {
        "iss": "shopgate-hub",
        "aud": "demo-001",
        "sub": "mallory",
        "scope": "entry",
        "jti": uuid.uuid4().hex,
    } | claims
    return jwt.encode(body, keys.key, algorithm="EdDSA", headers={"kid": keys.kid})


async def test_a_spoofed_ntp_jump_of_ten_years_neither_locks_the_store_nor_survives(store):
    t, keys, start = store
    a = await start()
    assert await scan(a, entry_pass(keys, T0)) == "granted"

    t.wall_now += 10 * YEAR  # one spoofed NTP reply; timesyncd steps the clock
    t.advance(5)
    await a.journal.check_clock()  # the agent notices (it checks every few seconds)
    await a.journal.append("door.closed", {"door": "back"})  # a commit saves the clock
    assert await scan(a, entry_pass(keys, T0 + 5)) == "granted"
    held = [e for e in _events(a, "clock.jumped") if e["direction"] == "forward"]
    assert held and held[-1]["accepted"] is False and held[-1]["status"] == "held"

    t.wall_now = T0 + 20  # NTP is right again...
    t.mono_now += 10
    a = await start()  # ...and the agent restarts: the spoofed time was never saved
    # The spoof moved the agent's time by clock.max_unconfirmed_seconds (60) at most.
    assert T0 + 20 <= a.clock.now() <= T0 + 20 + 60
    assert await scan(a, entry_pass(keys, T0 + 20)) == "granted"


async def test_an_offline_boot_does_not_revive_a_pass_that_expired_while_the_pi_was_off(store):
    t, keys, start = store
    a = await start()
    old = entry_pass(keys, T0, ttl=300)  # valid until T0 + 300
    t.advance(100)
    await a.journal.append("door.closed", {"door": "back"})
    await a.stop()  # shutdown at T0 + 100; fake-hwclock saves that time too

    # Off for two hours; boots with no network: the wall clock says T0 + 100 again.
    t.reboot(wall=T0 + 100)
    a = await start()
    assert await scan(a, old) == "expired"

    # The first pass the hub mints after the boot tells the agent what time it is at least;
    # from then on the old pass is expired on the clock itself.
    assert await scan(a, entry_pass(keys, T0 + 7200 - 30)) == "granted"
    assert a.clock.now() >= T0 + 7200 - 30
    assert await scan(a, old) == "expired"


async def test_a_pass_issued_a_year_ahead_with_a_three_year_life_is_refused(store):
    _, keys, start = store
    a = await start()
    ahead = forged(keys, iat=int(T0 + YEAR), exp=int(T0 + 3 * YEAR))
    assert await scan(a, ahead) == "not_yet_valid"
    long_lived = forged(keys, iat=int(T0), exp=int(T0 + 3 * YEAR))
    assert await scan(a, long_lived) == "malformed"
    assert a.clock.now() < T0 + 60  # and neither moved the agent's clock


# --- every badly timed pass, generated --------------------------------------------

SKEW = 60
SCOPES = ("entry", "pickup", "staff", "ops")


@st.composite
def badly_timed(draw: st.DrawFn) -> tuple[str, int, int]:
    """(scope, iat, exp) that no agent may accept at T0, whatever the signature says."""
    scope = draw(st.sampled_from(SCOPES))
    cap = MAX_LIFETIME_S[scope]
    now = int(T0)
    match draw(st.sampled_from(["future", "overlong", "inverted", "expired"])):
        case "future":  # issued beyond the skew ahead of the agent's (settled) time
            iat = now + SKEW + draw(st.integers(1, 10**9))
            return scope, iat, iat + draw(st.integers(1, cap))
        case "overlong":  # lives longer than its scope allows
            iat = now - draw(st.integers(0, cap))
            return scope, iat, iat + draw(st.integers(cap + 1, 10**10))
        case "inverted":  # expires before (or when) it is issued
            iat = now - draw(st.integers(0, 10**6))
            return scope, iat, iat - draw(st.integers(0, 10**6))
        case _:  # expired beyond the skew
            exp = now - SKEW - draw(st.integers(1, 10**9))
            return scope, exp - draw(st.integers(1, cap)), exp


@settings(max_examples=300, deadline=None)
@given(badly_timed(), st.booleans())
def test_every_badly_timed_pass_or_command_is_refused(
    case: tuple[str, int, int], with_nbf: bool
) -> None:
    scope, iat, exp = case
    t = FakeTime()
    clock = Clock(wall=t.wall, mono=t.mono, boot_id=lambda: "boot")
    key = HUB_KEY.key
    verifier = PassVerifier({"demo": key.public_key()}, skew_seconds=SKEW, clock=clock)
    settle = jwt.encode(_claims(scope, int(T0), int(T0) + 60), key, "EdDSA", {"kid": "demo"})
    assert isinstance(
        verifier.verify(settle, store="demo-001", now=clock.now(), scopes=frozenset({scope})),
        Claims,
    )
    claims = _claims(scope, iat, exp) | ({"nbf": iat} if with_nbf else {})
    bad = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": "demo"})
    verdict = verifier.verify(bad, store="demo-001", now=clock.now(), scopes=frozenset({scope}))
    assert isinstance(verdict, Rejected), (scope, iat - T0, exp - iat)
    assert clock.now() == T0  # and the agent's time did not move


def _claims(scope: str, iat: int, exp: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "iss": "shopgate-hub",
        "aud": "demo-001",
        "sub": "mallory",
        "scope": scope,
        "jti": uuid.uuid4().hex,
        "iat": iat,
        "exp": exp,
    }
    if scope == "pickup":
        body["orders"] = ["o-1"]
    if scope == "ops":
        body |= {"cmd": "unlock", "args": {"door": "back"}}
    return body


def _events(a: Agent, type_: str) -> list[dict[str, Any]]:
    return [e["data"] for e in JournalView(a.cfg.storage.dir / "journal.db").events(type_)]
