"""Signed commands over a real broker: what runs, what is refused, and the replies."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.clock import Clock
from agent.journal import Journal
from cloud.signing import mint_pass, sign_command
from tests.agent.mqtt.harness import STORE, Keys, Seen, Watcher, running_ops, until, watching
from tests.support.broker import BrokerHandle

CMD = f"shopgate/{STORE}/cmd"
REPLY = f"shopgate/{STORE}/reply"


def raw_token(keys: Keys, **claims: Any) -> str:
    """A command with exactly these claims changed (sign_command refuses odd ones)."""
    now = int(time.time())
    body = {"iss": "shopgate-hub", "aud": STORE, "sub": "hub", "scope": "ops", "jti": "x"}
    body |= {"iat": now, "exp": now + 60, "cmd": "ping", "args": {}} | claims
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, keys.key, algorithm="EdDSA", headers={"kid": keys.kid})


async def send(w: Watcher, payload: str | bytes, **kw: Any) -> None:
    await w.client.publish(CMD, payload, qos=1, **kw)


async def reply_for(w: Watcher, jti: str | None) -> Seen:
    return await w.next(REPLY, lambda s: s.json()["id"] == jti)


async def test_a_signed_ping_through_mosquitto_pub_gets_a_reply_on_mosquitto_sub(
    tmp_path: Path, broker: BrokerHandle, keys: Keys
) -> None:
    token = keys.sign("ping", jti="ping-1")
    async with running_ops(tmp_path, keys, broker.url) as run:
        at = ["-h", broker.host, "-p", str(broker.port), "-q", "1"]
        sub = subprocess.Popen(  # noqa: ASYNC220 (waited for in a thread below)
            ["mosquitto_sub", *at, "-t", REPLY, "-C", "1", "-W", "10"], stdout=subprocess.PIPE
        )
        try:
            # mosquitto_sub is connected (the agent was first), then give it its SUBSCRIBE.
            await until(lambda: broker.log.count("New client connected") >= 2, within=5)
            await asyncio.sleep(0.2)
            await asyncio.to_thread(
                subprocess.run,
                ["mosquitto_pub", *at, "-t", CMD, "-m", token],
                check=True,
            )
            out, _ = await asyncio.to_thread(sub.communicate, timeout=10)
        finally:
            if sub.poll() is None:
                sub.kill()
    reply = json.loads(out)
    assert reply["id"] == "ping-1" and reply["ok"] is True
    assert reply["result"]["pong"] is True
    assert run.handler.calls == [("ping", {})]
    assert [t for t, _ in run.events()] == ["command.received", "command.executed"]


async def test_bad_commands_are_refused_with_their_reason_and_run_nothing(
    tmp_path: Path, broker: BrokerHandle, keys: Keys
) -> None:
    now = time.time()
    forger = Ed25519PrivateKey.generate()
    cases = {
        "bad_signature": sign_command(forger, keys.kid, store=STORE, cmd="unlock", jti="f1"),
        "unknown_key": sign_command(forger, "nope", store=STORE, cmd="unlock", jti="f2"),
        "expired": keys.sign("unlock", now=now - 600, ttl=60, jti="f3"),
        "not_yet_valid": raw_token(keys, jti="f4", nbf=int(now) + 600),
        "wrong_store": keys.sign("unlock", store="other-002", jti="f5"),
        # A door pass is not a command, however well signed.
        "wrong_scope": mint_pass(keys.key, keys.kid, store=STORE, scope="entry", sub="c", jti="f6"),
    }
    async with running_ops(tmp_path, keys, broker.url) as run, watching(broker, REPLY) as w:
        for token in cases.values():
            await send(w, token)
        await send(w, b"this is not a command")
        await send(w, b"\xff\xfe")
        for code, jti in zip(cases, ["f1", "f2", "f3", "f4", "f5", "f6"], strict=True):
            reply = (await reply_for(w, jti)).json()
            assert reply["ok"] is False and reply["error"]["code"] == code, reply
            assert reply["error"]["message"]
        await until(lambda: len([s for s in w.on(REPLY) if s.json()["id"] is None]) == 2, 5)
        garbage = [s.json() for s in w.on(REPLY) if s.json()["id"] is None]
        assert [g["error"]["code"] for g in garbage] == ["malformed", "malformed"]
        assert run.handler.calls == []
        await until(lambda: len(run.events()) == 8, within=5)
    refused = run.events()
    assert {t for t, _ in refused} == {"command.refused"}
    assert [d["code"] for _, d in refused][:6] == list(cases)


async def test_a_replayed_command_is_refused_even_after_a_restart(
    tmp_path: Path, broker: BrokerHandle, keys: Keys
) -> None:
    token = keys.sign("unlock", {"door": "front"}, jti="u-1")
    journal = await Journal.open(tmp_path / "agent" / "journal.db", STORE, Clock())
    try:
        async with (
            running_ops(tmp_path, keys, broker.url, journal=journal) as run,
            watching(broker, REPLY) as w,
        ):
            await send(w, token)
            first = (await w.next(REPLY)).json()
            await send(w, token)
            await until(lambda: len(w.on(REPLY)) == 2, within=5)
            second = w.on(REPLY)[1].json()
            assert run.handler.calls == [("unlock", {"door": "front"})]
        assert first["ok"] is True
        assert second == {
            "id": "u-1",
            "ok": False,
            "error": {"code": "replayed", "message": "command already received"},
        }
        # A new agent process knows nothing in memory: the journal remembers.
        async with (
            running_ops(tmp_path, keys, broker.url, journal=journal) as run2,
            watching(broker, REPLY) as w2,
        ):
            await send(w2, token)
            third = (await w2.next(REPLY)).json()
            assert third["error"]["code"] == "replayed"
            assert run2.handler.calls == []
    finally:
        await journal.close()


async def test_handler_refusals_and_failures_are_replied_and_journaled(
    tmp_path: Path, broker: BrokerHandle, keys: Keys
) -> None:
    async with running_ops(tmp_path, keys, broker.url) as run, watching(broker, REPLY) as w:
        await send(w, keys.sign("fail", jti="c1"))
        await send(w, keys.sign("crash", jti="c2"))
        await send(w, keys.sign("teleport", jti="c3"))
        fail = (await reply_for(w, "c1")).json()
        crash = (await reply_for(w, "c2")).json()
        unknown = (await reply_for(w, "c3")).json()
        await until(lambda: len(run.events()) == 6, within=5)
    assert fail["error"] == {
        "code": "failed",
        "message": "printer-1 is out of paper",
        "device": "printer-1",
    }
    assert crash["error"]["code"] == "failed" and "boom" in crash["error"]["message"]
    assert unknown["error"]["code"] == "unknown_command"
    outcomes = [(t, d["jti"], d["code"]) for t, d in run.events() if t != "command.received"]
    assert outcomes == [
        ("command.refused", "c1", "failed"),
        ("command.refused", "c2", "failed"),
        ("command.refused", "c3", "unknown_command"),
    ]


async def test_mqtt5_reply_goes_to_the_response_topic_with_the_correlation_data(
    tmp_path: Path, broker: BrokerHandle, keys: Keys
) -> None:
    mine = f"shopgate/{STORE}/reply/hub-{uuid.uuid4().hex[:6]}"
    async with running_ops(tmp_path, keys, broker.url), watching(broker, REPLY, mine) as w:
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = mine
        props.CorrelationData = b"req-42"
        await send(w, keys.sign("ping", jti="r1"), properties=props)
        direct = await w.next(mine)
        general = await w.next(REPLY)
    assert direct.properties.CorrelationData == b"req-42"
    assert direct.json()["id"] == "r1" and direct.json()["ok"] is True
    assert general.payload == direct.payload


async def test_commands_run_one_at_a_time_in_order_and_overflow_is_busy(
    tmp_path: Path, broker: BrokerHandle, keys: Keys
) -> None:
    async with (
        running_ops(tmp_path, keys, broker.url, command_queue=1) as run,
        watching(broker, REPLY) as w,
    ):
        await send(w, keys.sign("hold", jti="q1"))  # runs, and blocks the executor
        await until(lambda: run.handler.calls == [("hold", {})], within=5)
        await send(w, keys.sign("ping", {"n": 2}, jti="q2"))  # waits in the queue
        await send(w, keys.sign("ping", {"n": 3}, jti="q3"))  # finds it full
        busy = (await reply_for(w, "q3")).json()
        assert busy["ok"] is False and busy["error"]["code"] == "busy"
        assert run.handler.calls == [("hold", {})]
        run.handler.release.set()
        assert (await reply_for(w, "q1")).json()["result"] == {"held": True}
        assert (await reply_for(w, "q2")).json()["ok"] is True
    assert run.handler.calls == [("hold", {}), ("ping", {"n": 2})]
    ids = [s.json()["id"] for s in w.on(REPLY)]
    assert ids == ["q3", "q1", "q2"]


@pytest.mark.parametrize("claims", [{"args": [1, 2]}, {"args": "x"}, {"cmd": None}, {"cmd": 7}])
async def test_commands_without_a_name_or_an_args_object_are_malformed(
    tmp_path: Path, broker: BrokerHandle, keys: Keys, claims: dict[str, Any]
) -> None:
    async with running_ops(tmp_path, keys, broker.url) as run, watching(broker, REPLY) as w:
        await send(w, raw_token(keys, jti="m1", **claims))
        reply = (await reply_for(w, "m1")).json()
    assert reply["error"]["code"] == "malformed"
    assert run.handler.calls == []
