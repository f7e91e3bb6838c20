"""Every door event reaches the hub: the simulator, the agent and the hub as separate
processes; the hub is down for a while and comes back on the same port."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.e2e.test_door import decide, reason
from tests.support.agent import Keys, start_agent
from tests.support.hub import start_hub
from tests.support.sim import SimHandle, wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_door_events_reach_the_hub_in_order_after_an_outage(
    sim: SimHandle, keys: Keys, run_dir: Path
):
    port = free_port()
    hub = start_hub(run_dir, port=port)
    with start_agent(run_dir, env=hub.agent_env) as agent:
        assert reason(decide(agent, sim, keys.mint(scope="entry", sub="ivy"))) == "granted"
        wait_until(
            lambda: any(e["type"] == "access.granted" for e in hub.all_events()),
            10,
            "the grant at the hub",
        )
        hub.stop()  # the uplink goes down; the door keeps working
        for i in range(5):
            assert reason(decide(agent, sim, keys.mint(scope="entry", sub=f"p{i}"))) == "granted"
        local = agent.journal.events()
        hub = start_hub(run_dir, port=port, token=hub.token)
        try:
            wait_until(lambda: len(hub.all_events()) >= len(local), 20, "the backlog at the hub")
            at_hub = hub.all_events()
        finally:
            hub.stop()
    seqs = [e["seq"] for e in at_hub]
    assert seqs == sorted(set(seqs))  # in seq order, none twice
    assert [e["id"] for e in at_hub[: len(local)]] == [e["id"] for e in local]
    granted = [e for e in at_hub if e["type"] == "access.granted"]
    assert [e["data"]["sub"] for e in granted] == ["ivy", "p0", "p1", "p2", "p3", "p4"]
