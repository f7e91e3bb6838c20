"""An agent running inside the test's own event loop, on the real simulator.

    sim = start_sim(tmp_path)
    config = write_agent_config(tmp_path, sim, lambda cfg: cfg["devices"].append(...))
    store = await InprocAgent.start(config, sim, ready=lambda a: a.state()["vending"]...)
    await store.command("vend", machine="vending-1", slot=1)   # as staff on the spot
    await store.remote("catalog.upsert", {"products": [...]})   # as MQTT hands it over
    assert store.data("vend.completed") == [...]
    await store.stop()

In-process, so a test can read the agent's state and services directly; the devices are
still the simulator's real ptys and sockets and the journal a real SQLite file, read back
through JournalView as a hub would see the events. tests/support/agent.py runs the agent
as a subprocess instead (tests/e2e).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from agent.app import Agent
from agent.clock import Clock
from agent.config import load_config
from agent.journal import Journal
from agent.journal.ops import Op
from agent.journal.view import JournalView
from agent.model.commands import Caller
from agent.remote.commands import StoreCommands
from agent.services.orders import PendingOrders
from runtime.systemd import Notifier
from tests.support.agent import make_keys
from tests.support.pty_devices import eventually
from tests.support.sim import SimHandle, start_sim

STORE = "demo-001"
SIM_STORE = Path(__file__).resolve().parents[2] / "firmware-sim" / "shopgate_sim" / "store.yaml"
# An operator's signed command, as the MQTT transport hands it to StoreCommands.
OPERATOR = Caller(sub="op", jti="cmd-1", kid="demo")

Edit = Callable[[dict[str, Any]], None]


def start_sim_with(run_dir: Path, edit: Edit) -> SimHandle:
    """The simulator running the demo store's hardware (store.yaml) as `edit` changes it."""
    raw = yaml.safe_load(SIM_STORE.read_text(encoding="utf-8"))
    edit(raw)
    path = run_dir / "sim-store.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return start_sim(run_dir, config=path)


def agent_template(sim: SimHandle) -> dict[str, Any]:
    """The smallest store that runs: the simulator's lock bus with the front door on board 1,
    entry keys from the run folder, and a hub and broker on closed ports (MQTT off)."""
    return {
        "store": {"id": STORE},
        "storage": {"dir": "agent"},
        "access": {"keys": [{"kid": "demo", "pem_file": "keys/hub-signing.pub.pem"}]},
        "hub": {"url": "http://127.0.0.1:9"},
        "mqtt": {"url": "mqtt://127.0.0.1:9", "enabled": False},
        "devices": [
            {
                "id": "lockbus-1",
                "kind": "lockbus",
                "port": str(sim.link("lockbus-1")),
                "boards": [1],
            }
        ],
        "doors": [
            {
                "id": "front",
                "lock": {"type": "lockboard", "device": "lockbus-1", "board": 1, "channel": 1},
                "contact": {"type": "lock_feedback"},
            }
        ],
    }


def write_agent_config(run_dir: Path, sim: SimHandle, edit: Edit | None = None) -> Path:
    """agent_template() changed by `edit`, written as run_dir/config.yaml beside its keys."""
    make_keys(run_dir)
    raw = agent_template(sim)
    if edit is not None:
        edit(raw)
    path = run_dir / "config.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return path


async def seed_journal(
    run_dir: Path, *, orders: Iterable[dict[str, Any]] = (), ops: Iterable[Op] = ()
) -> None:
    """What the journal holds before the agent starts (e.g. as a crash left it)."""
    storage = run_dir / "agent"
    storage.mkdir(parents=True, exist_ok=True)
    journal = await Journal.open(storage / "journal.db", STORE, Clock())
    try:
        if orders := list(orders):
            await PendingOrders(journal, {}, code_length=6).upsert(orders)
        if ops := list(ops):
            await journal.apply(ops)
    finally:
        await journal.close()


class InprocAgent:
    """The running agent plus what a test reads back from its journal and the simulator."""

    def __init__(self, agent: Agent, sim: SimHandle) -> None:
        self.agent = agent
        self.sim = sim
        self.view = JournalView(agent.cfg.storage.dir / "journal.db")

    @classmethod
    async def start(
        cls,
        config: Path,
        sim: SimHandle,
        ready: Callable[[Agent], bool] | None = None,
        within: float = 5.0,
    ) -> InprocAgent:
        """Start the agent and wait until `ready` says its devices are there."""
        agent = Agent(config, load_config(config), Notifier(None))
        await agent.start()
        if ready is not None:
            try:
                await eventually(lambda: ready(agent), within=within)
            except BaseException:
                await agent.stop()
                raise
        return cls(agent, sim)

    async def stop(self) -> None:
        await self.agent.stop()

    async def command(self, name: str, /, by: str = "staff-1", **args: Any) -> dict[str, Any]:
        """A command given on the spot (the local API): `by` is who gave it."""
        return await self.agent.local_command(name, args, by)

    async def remote(
        self, name: str, args: dict[str, Any], caller: Caller = OPERATOR
    ) -> dict[str, Any]:
        """A signed remote command, as the MQTT transport passes it on once verified."""
        return await StoreCommands(self.agent)(name, args, caller)

    def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        return self.view.events(type_)

    def data(self, type_: str) -> list[dict[str, Any]]:
        return [e["data"] for e in self.events(type_)]

    async def upsert(self, *orders: dict[str, Any], settle: bool = True) -> None:
        """Orders as the hub pushes them; with `settle`, until what they started is done."""
        await self.agent.store.orders.upsert(orders)
        if settle:
            await self.settle()

    async def settle(self) -> None:
        """Wait for the work that upserts and device feedback spawned (journal writes,
        openings, vends), including what that work spawned in turn."""
        for _ in range(3):
            while self.agent._inflight:
                await asyncio.gather(*list(self.agent._inflight), return_exceptions=True)
            await asyncio.sleep(0.05)

    async def sim_get(self, path: str) -> Any:
        return await asyncio.to_thread(self.sim.get, path)

    async def sim_post(self, path: str, body: dict[str, Any]) -> Any:
        return await asyncio.to_thread(self.sim.post, path, body)


def paid_order(oid: str, device: str, slot: int, **extra: Any) -> dict[str, Any]:
    """A paid order for one cola that `device` (a locker or vending machine) dispenses."""
    return {
        "id": oid,
        "platform": "local",
        "status": "pending",
        "items": [{"barcode": "6901028075022", "name": "可口可乐 500ml", "qty": 1, "price": 3.5}],
        "paid": True,
        "payment": {"id": f"pay-{oid}", "method": "wechat"},
        "dispense": {"device": device, "slot": slot},
    } | extra
