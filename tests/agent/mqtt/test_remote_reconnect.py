"""Reconnection: a broker restart, commands sent while the store is away, old brokers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.agent.mqtt.harness import STORE, Keys, running_ops, until, watching
from tests.support.broker import BrokerHandle
from tests.support.tcp_proxy import TcpProxy

STATUS = f"shopgate/{STORE}/status"
STATE = f"shopgate/{STORE}/state"
CMD = f"shopgate/{STORE}/cmd"
REPLY = f"shopgate/{STORE}/reply"


async def test_after_a_broker_restart_the_agent_is_back_and_republishes(
    tmp_path: Path, broker: BrokerHandle, keys: Keys
) -> None:
    # The agent reaches the broker through a proxy that is held shut while the restarted
    # broker gets a subscriber, so that the republished status and state are seen live.
    proxy = await TcpProxy.start(broker.host, broker.port)
    try:
        async with running_ops(tmp_path, keys, f"mqtt://127.0.0.1:{proxy.port}") as run:
            await asyncio.to_thread(broker.restart)
            await until(lambda: not run.ops.connected, within=5)
            proxy.cut()
            async with watching(broker, STATUS, STATE, REPLY) as w:
                proxy.heal()
                t0 = time.monotonic()
                status = await w.next(STATUS, lambda s: not s.retain, within=10)
                await w.next(STATE, lambda s: not s.retain, within=10)
                assert time.monotonic() - t0 < 10
                assert status.json()["online"] is True
                await w.client.publish(CMD, keys.sign("ping", jti="after-restart"), qos=1)
                assert (await w.next(REPLY)).json()["ok"] is True
    finally:
        await proxy.close()


async def test_commands_sent_while_the_store_is_away_are_delivered_on_reconnect(
    tmp_path: Path, broker: BrokerHandle, keys: Keys
) -> None:
    proxy = await TcpProxy.start(broker.host, broker.port)
    try:
        async with (
            running_ops(tmp_path, keys, f"mqtt://127.0.0.1:{proxy.port}") as run,
            watching(broker, REPLY) as w,
        ):
            proxy.cut()
            await until(lambda: not run.ops.connected, within=5)
            # The broker holds these for the store's persistent session (QoS 1).
            await w.client.publish(CMD, keys.sign("unlock", {"door": "front"}, jti="a1"), qos=1)
            stale = keys.sign("unlock", {"door": "front"}, jti="a2", now=time.time() - 300, ttl=60)
            await w.client.publish(CMD, stale, qos=1)
            await asyncio.sleep(0.2)
            assert w.on(REPLY) == [] and run.handler.calls == []
            proxy.heal()
            ok = (await w.next(REPLY, lambda s: s.json()["id"] == "a1", within=10)).json()
            late = (await w.next(REPLY, lambda s: s.json()["id"] == "a2", within=10)).json()
        assert ok["ok"] is True
        assert late["error"]["code"] == "expired"
        assert run.handler.calls == [("unlock", {"door": "front"})]
    finally:
        await proxy.close()


async def test_a_broker_that_refuses_mqtt5_is_spoken_to_in_3_1_1(
    tmp_path: Path, broker: BrokerHandle, keys: Keys
) -> None:
    proxy = await TcpProxy.start(broker.host, broker.port, refuse_mqtt5=True)
    try:
        async with (
            running_ops(tmp_path, keys, f"mqtt://127.0.0.1:{proxy.port}") as run,
            watching(broker, REPLY) as w,
        ):
            assert proxy.protocol_levels[:2] == [5, 4]
            assert run.ops.protocol == "3.1.1"
            await w.client.publish(CMD, keys.sign("ping", jti="v311"), qos=1)
            assert (await w.next(REPLY)).json()["ok"] is True
            # 3.1.1 has sessions too: a command sent while away still arrives.
            proxy.cut()
            await until(lambda: not run.ops.connected, within=5)
            await w.client.publish(CMD, keys.sign("ping", jti="v311-away"), qos=1)
            proxy.heal()
            away = await w.next(REPLY, lambda s: s.json()["id"] == "v311-away", within=10)
            assert away.json()["ok"] is True
            assert set(proxy.protocol_levels[2:]) == {4}
    finally:
        await proxy.close()
