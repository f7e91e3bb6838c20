"""The shipped broker ACL (deploy/mosquitto/aclfile) with the agent logging in for real."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.mqtt.harness import STORE, Keys, running_ops, watching
from tests.support.broker import BrokerHandle, start_broker

OTHER = "other-002"
USERS = {
    STORE: "store-pw-1",
    OTHER: "store-pw-2",
    "shopgate-hub": "hub-pw",
    "homeassistant": "ha-pw",
}


@pytest.fixture
def acl_broker(tmp_path: Path) -> Iterator[BrokerHandle]:
    handle = start_broker(tmp_path, acl=True, users=USERS)
    try:
        yield handle
    finally:
        handle.stop()


def login(user: str) -> dict[str, str]:
    return {"user": user, "password": USERS[user]}


async def test_a_store_logs_in_and_the_hub_commands_it(
    tmp_path: Path, acl_broker: BrokerHandle, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = tmp_path / "mqtt.pw"
    secret.write_text(USERS[STORE] + "\n")
    topics = [f"shopgate/{STORE}/{t}" for t in ("status", "state", "reply")]
    async with (
        running_ops(
            tmp_path,
            keys,
            acl_broker.url,
            username=STORE,
            password_file=str(secret),
            home_assistant={"enabled": True},
        ),
        watching(acl_broker, *topics, **login("shopgate-hub")) as hub,
    ):
        assert (await hub.next(topics[0])).json()["online"] is True
        await hub.next(topics[1])
        await hub.client.publish(f"shopgate/{STORE}/cmd", keys.sign("ping", jti="acl"), qos=1)
        assert (await hub.next(topics[2])).json()["ok"] is True
        # Home Assistant sees the store's discovery configs but cannot command the store.
        async with watching(acl_broker, "homeassistant/#", **login("homeassistant")) as ha:
            lock = await ha.next(f"homeassistant/lock/{STORE}/front/config")
            assert lock.json()["command_topic"] == f"shopgate/{STORE}/cmd"
            await ha.client.publish(lock.json()["command_topic"], b"UNLOCK", qos=1)
        await hub.client.publish(f"shopgate/{STORE}/cmd", keys.sign("ping", jti="acl2"), qos=1)
        await hub.next(topics[2], lambda s: s.json()["id"] == "acl2")
        # Only the hub's two commands got through; HA's UNLOCK never reached the store.
        assert [s.json()["id"] for s in hub.on(topics[2])] == ["acl", "acl2"]
    assert USERS[STORE] not in caplog.text


async def test_a_store_cannot_read_or_command_another_store(
    tmp_path: Path, acl_broker: BrokerHandle
) -> None:
    theirs = [f"shopgate/{OTHER}/cmd", f"shopgate/{OTHER}/state", f"shopgate/{OTHER}/reply"]
    async with (
        watching(acl_broker, *theirs, f"shopgate/{STORE}/cmd", **login(STORE)) as nosy,
        watching(acl_broker, f"shopgate/{OTHER}/cmd", **login(OTHER)) as other,
        watching(acl_broker, "shopgate/+/cmd", "shopgate/+/state", **login("shopgate-hub")) as hub,
    ):
        # The other store's traffic: its state, and a command from the hub to it.
        await other.client.publish(f"shopgate/{OTHER}/state", b'{"x":1}', qos=1, retain=True)
        await hub.client.publish(f"shopgate/{OTHER}/cmd", b"for-other", qos=1)
        # A store trying to command another store, or itself.
        await nosy.client.publish(f"shopgate/{OTHER}/cmd", b"forged-by-nosy", qos=1)
        await nosy.client.publish(f"shopgate/{STORE}/cmd", b"self-command", qos=1)
        # Then a sentinel on the same connections: once it is in, the rest has been decided.
        await hub.client.publish(f"shopgate/{STORE}/cmd", b"sentinel", qos=1)
        await nosy.next(f"shopgate/{STORE}/cmd", lambda s: s.payload == b"sentinel")
        await hub.next(f"shopgate/{OTHER}/state")
        await other.next(f"shopgate/{OTHER}/cmd", lambda s: s.payload == b"for-other")
        await asyncio.sleep(0.1)
    assert [s.payload for s in nosy.seen] == [b"sentinel"]
    assert [s.payload for s in other.on(f"shopgate/{OTHER}/cmd")] == [b"for-other"]
    hub_cmds = [s.payload for s in hub.on("shopgate/+/cmd")]
    assert b"forged-by-nosy" not in hub_cmds and b"self-command" not in hub_cmds


async def test_wrong_password_is_refused_and_logged_without_the_password(
    tmp_path: Path, acl_broker: BrokerHandle, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "mqtt.pw"
    secret.write_text("not-the-password")
    async with running_ops(
        tmp_path, keys, acl_broker.url, connect=False, username=STORE, password_file=str(secret)
    ) as run:
        await asyncio.sleep(0.5)
        assert not run.ops.connected
    assert "cannot connect to the broker" in caplog.text
    assert "not-the-password" not in caplog.text
