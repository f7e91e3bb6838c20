"""HubBus against a real mosquitto and a real agent RemoteOps (in-process)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cloud.bus import BusUnavailable, HubBus
from tests.agent.mqtt.harness import STORE, Keys, running_ops, until, watching
from tests.support.broker import BrokerHandle, start_broker


@contextlib.asynccontextmanager
async def running_bus(url: str, keys: Keys, instance: str, **kw: Any) -> AsyncIterator[HubBus]:
    bus = HubBus(
        mqtt_url=url,
        topic_root="shopgate",
        key=keys.key,
        kid=keys.kid,
        instance_id=instance,
        reconnect_min_s=0.05,
        reconnect_max_s=0.3,
        **kw,
    )
    await bus.start()
    try:
        async with asyncio.timeout(5):
            await bus.until_connected()
        yield bus
    finally:
        await bus.stop()


async def test_a_command_gets_its_reply_and_each_hub_only_its_own(
    tmp_path: Path, broker: BrokerHandle, keys: Keys
) -> None:
    async with (
        running_ops(tmp_path, keys, broker.url) as store,
        running_bus(broker.url, keys, "hub-a") as a,
        running_bus(broker.url, keys, "hub-b") as b,
        watching(broker, f"shopgate/{STORE}/reply/#") as seen,
    ):
        replies = await asyncio.gather(
            a.send_command(STORE, "ping", {}), b.send_command(STORE, "unlock", {"door": "x"})
        )
        assert replies[0] is not None and replies[0]["ok"] is True
        assert replies[0]["result"]["pong"] is True
        assert replies[1] is not None and replies[1]["result"] == {"door": "x", "unlocked": True}
        # Each reply went to the response topic of the hub that asked, and only there.
        await seen.next(f"shopgate/{STORE}/reply/hub-a")
        await seen.next(f"shopgate/{STORE}/reply/hub-b")
        assert [json.loads(s.payload)["id"] for s in seen.on(f"shopgate/{STORE}/reply/hub-a")] == [
            replies[0]["id"]
        ]
        assert [c for c, _ in store.handler.calls] == ["ping", "unlock"] or [
            c for c, _ in store.handler.calls
        ] == ["unlock", "ping"]


async def test_presence_is_known_to_every_hub_and_changes_are_consumed_once(
    tmp_path: Path, broker: BrokerHandle, keys: Keys
) -> None:
    got: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}

    async with (
        running_bus(broker.url, keys, "hub-a") as a,
        running_bus(broker.url, keys, "hub-b") as b,
    ):

        async def record_a(store: str, status: dict[str, Any]) -> None:
            got["a"].append(status)

        async def record_b(store: str, status: dict[str, Any]) -> None:
            got["b"].append(status)

        a.on_status(record_a)
        b.on_status(record_b)
        assert a.store_online(STORE) is None
        async with running_ops(tmp_path, keys, broker.url) as store:
            await until(lambda: a.store_online(STORE) is True, 5)
            await until(lambda: b.store_online(STORE) is True, 5)
            await until(lambda: len(got["a"]) + len(got["b"]) >= 1, 5)
            del store
        await until(lambda: a.store_online(STORE) is False, 5)
        await until(lambda: b.store_online(STORE) is False, 5)
        await until(lambda: len(got["a"]) + len(got["b"]) >= 2, 5)
        await asyncio.sleep(0.2)  # a duplicate delivery would arrive by now
        statuses = [s["online"] for s in got["a"] + got["b"]]
        assert sorted(statuses) == [False, True]


async def test_a_hub_started_later_learns_presence_from_the_retained_status(
    tmp_path: Path, broker: BrokerHandle, keys: Keys
) -> None:
    async with running_ops(tmp_path, keys, broker.url):
        async with running_bus(broker.url, keys, "late") as late:
            await until(lambda: late.store_online(STORE) is True, 5)


async def test_no_reply_within_the_wait_is_none_and_no_broker_is_unavailable(
    tmp_path: Path, broker: BrokerHandle, keys: Keys
) -> None:
    async with running_bus(broker.url, keys, "hub-a", connect_wait_s=0.3) as bus:
        assert await bus.send_command("nobody-here", "ping", {}, wait_reply=0.2) is None
        assert await bus.send_command("nobody-here", "ping", {}, wait_reply=None) is None
        assert not bus._waiting
        broker.stop()
        await until(lambda: not bus.connected, 5)
        with pytest.raises(BusUnavailable):
            await bus.send_command(STORE, "ping", {}, wait_reply=0.1)
        broker.restart()
        async with asyncio.timeout(5):
            await bus.until_connected()


async def test_the_hub_logs_in_under_the_shipped_acl(tmp_path: Path, keys: Keys) -> None:
    users = {STORE: "store-pw", "shopgate-hub": "hub-pw"}
    acl_broker = start_broker(tmp_path / "acl", acl=True, users=users)
    try:
        secret = tmp_path / "store.pw"
        secret.write_text("store-pw\n")
        async with (
            running_ops(tmp_path, keys, acl_broker.url, username=STORE, password_file=str(secret)),
            running_bus(
                acl_broker.url, keys, "hub-a", username="shopgate-hub", password="hub-pw"
            ) as bus,
        ):
            await until(lambda: bus.store_online(STORE) is True, 5)
            reply = await bus.send_command(STORE, "ping", {})
            assert reply is not None and reply["ok"] is True
    finally:
        acl_broker.stop()
