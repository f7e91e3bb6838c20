"""The store's retained status and state, and the will that marks it offline."""

from __future__ import annotations

import asyncio
from pathlib import Path

import agent
from tests.agent.mqtt.harness import STORE, Keys, running_ops, until, watching
from tests.support.broker import BrokerHandle
from tests.support.tcp_proxy import TcpProxy

STATUS = f"shopgate/{STORE}/status"
STATE = f"shopgate/{STORE}/state"


async def test_status_and_state_are_retained_for_late_subscribers(
    tmp_path: Path, broker: BrokerHandle, keys: Keys
) -> None:
    async with running_ops(tmp_path, keys, broker.url):
        # Subscribed after the agent published: only retained messages can arrive.
        async with watching(broker, STATUS, STATE) as w:
            status = (await w.next(STATUS)).json()
            state = (await w.next(STATE)).json()
    assert status["online"] is True
    assert status["version"] == agent.__version__
    assert status["started_at"].endswith("Z") and status["started_at"][:2] == "20"
    assert status["store"] == STORE  # status_extra
    assert state["doors"] == {"front": "locked"}


async def test_state_is_republished_once_per_burst_and_only_when_changed(
    tmp_path: Path, broker: BrokerHandle, keys: Keys
) -> None:
    async with running_ops(tmp_path, keys, broker.url) as run, watching(broker, STATE) as w:
        await w.next(STATE)  # the retained one
        run.ops.state_changed()  # nothing changed: nothing is sent
        run.state["door_info"]["front"]["released"] = True
        run.ops.state_changed()
        run.state["doors"]["front"] = "open"
        run.ops.state_changed()
        live = await w.next(STATE, lambda s: not s.retain)
        assert live.json()["doors"] == {"front": "open"}
        assert live.json()["door_info"]["front"]["released"] is True
        run.ops.state_changed()  # unchanged again
        await asyncio.sleep(0.1)
        assert len(w.on(STATE)) == 2


async def test_clean_stop_marks_the_store_offline(
    tmp_path: Path, broker: BrokerHandle, keys: Keys
) -> None:
    async with running_ops(tmp_path, keys, broker.url):
        pass
    async with watching(broker, STATUS) as w:
        assert (await w.next(STATUS)).json() == {"online": False}


async def test_a_dropped_connection_publishes_the_will_and_the_agent_comes_back(
    tmp_path: Path, broker: BrokerHandle, keys: Keys
) -> None:
    proxy = await TcpProxy.start(broker.host, broker.port)
    try:
        async with (
            running_ops(tmp_path, keys, f"mqtt://127.0.0.1:{proxy.port}") as run,
            watching(broker, STATUS, STATE) as w,
        ):
            await w.next(STATUS, lambda s: s.json()["online"])
            proxy.cut()  # the link drops without a DISCONNECT, and stays down
            offline = await w.next(STATUS, lambda s: s.json() == {"online": False})
            assert not offline.retain  # published live, by the broker
            await until(lambda: not run.ops.connected, within=2)
            proxy.heal()
            await w.next(STATUS, lambda s: s.json()["online"] and not s.retain, within=5)
            await w.next(STATE, lambda s: not s.retain, within=5)
            assert run.ops.connections == 2
    finally:
        await proxy.close()


async def test_a_silent_network_loss_is_noticed_within_keepalive(
    tmp_path: Path, broker: BrokerHandle, keys: Keys
) -> None:
    proxy = await TcpProxy.start(broker.host, broker.port)
    try:
        async with running_ops(tmp_path, keys, f"mqtt://127.0.0.1:{proxy.port}") as run:
            proxy.blackhole()  # nothing gets through, nobody hangs up
            t0 = asyncio.get_running_loop().time()
            await until(lambda: not run.ops.connected, within=2 + 1.5)  # keepalive 2 s + a tick
            noticed = asyncio.get_running_loop().time() - t0
            proxy.heal()
            async with asyncio.timeout(5):
                await run.ops.until_connected()
            assert noticed <= 3.5
    finally:
        await proxy.close()


async def test_a_dead_network_loop_is_noticed_and_replaced(
    tmp_path: Path, broker: BrokerHandle, keys: Keys
) -> None:
    async with running_ops(tmp_path, keys, broker.url) as run, watching(broker, STATUS) as w:
        await w.next(STATUS)
        client = run.ops._client
        assert client is not None
        # aiomqtt's task that drives paho's keepalive dies: nothing else would notice.
        client._misc_task.cancel()  # type: ignore[union-attr]
        await w.next(STATUS, lambda s: s.json()["online"] and not s.retain, within=5)
        assert run.ops.connections == 2
