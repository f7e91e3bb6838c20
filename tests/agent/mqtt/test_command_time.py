"""Signed commands against time: the same `iat` and lifetime rules as passes, and each
verified command tells the agent's clock the hub's time (transport-free: CommandRunner
on a real journal; the broker adds nothing to these rules)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.clock import Clock
from agent.journal import Journal
from agent.mqtt.commands import CommandRunner, ping
from agent.rules.passes import PassVerifier

STORE = "demo-001"
T0 = 1_800_000_000
KEY = Ed25519PrivateKey.generate()


def command(iat: float, ttl: float = 60, **claims: Any) -> str:
    body = {
        "iss": "shopgate-hub",
        "aud": STORE,
        "sub": "hub",
        "scope": "ops",
        "jti": uuid.uuid4().hex,
        "iat": iat,
        "exp": iat + ttl,
        "cmd": "ping",
        "args": {},
    } | claims
    return jwt.encode(body, KEY, algorithm="EdDSA", headers={"kid": "hub"})


class FakeTime:
    def __init__(self, wall: float) -> None:
        self.wall_now, self.mono_now = float(wall), 50.0

    def clock(self, boot: str) -> Clock:
        return Clock(wall=lambda: self.wall_now, mono=lambda: self.mono_now, boot_id=lambda: boot)


async def runner(path: Path, clock: Clock) -> tuple[CommandRunner, Journal]:
    journal = await Journal.open(path, STORE, clock)
    verifier = PassVerifier({"hub": KEY.public_key()}, skew_seconds=60, clock=clock)
    run = CommandRunner(
        store=STORE, journal=journal, verifier=verifier, clock=clock, handle=ping, skew_seconds=60
    )
    return run, journal


async def code(run: CommandRunner, token: str) -> str:
    return (await run.run(token)).code


async def test_commands_that_live_too_long_or_come_from_the_future_are_refused(
    tmp_path: Path,
) -> None:
    t = FakeTime(T0)
    clock = t.clock("b1")
    run, journal = await runner(tmp_path / "j.db", clock)
    try:
        assert await code(run, command(T0)) == "ok"  # the hub's time settles the clock
        assert await code(run, command(T0, ttl=3600)) == "ok"
        assert await code(run, command(T0, ttl=3601)) == "malformed"
        assert await code(run, command(T0, ttl=86400 * 365 * 3)) == "malformed"
        assert await code(run, command(T0 + 365 * 86400)) == "not_yet_valid"
        assert clock.now() == T0
    finally:
        await journal.close()


async def test_after_a_reboot_a_command_signed_before_it_waits_for_the_hubs_time(
    tmp_path: Path,
) -> None:
    t = FakeTime(T0)
    run, journal = await runner(tmp_path / "j.db", t.clock("b1"))
    queued = command(T0 + 50, ttl=900)  # queued at the broker, not delivered before...
    t.wall_now += 100
    t.mono_now += 100
    await journal.close()  # ...the Pi shuts down at T0 + 100

    t.wall_now, t.mono_now = T0 + 100, 3.0  # rebooted offline: fake-hwclock's time
    clock = t.clock("b2")
    run, journal = await runner(tmp_path / "j.db", clock)
    try:
        assert await code(run, queued) == "expired"
        # A command the hub signed two hours later: the hub's time, believed after a reboot.
        assert await code(run, command(T0 + 7200)) == "ok"
        assert clock.now() == T0 + 7200
        assert await code(run, queued) == "expired"  # now on the clock itself
    finally:
        await journal.close()
