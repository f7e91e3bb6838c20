"""Shared pieces of the MQTT tests: a store config pointing at a test broker, signed
commands, a RemoteOps running in-process with a real journal, and an MQTT watcher."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.clock import Clock
from agent.config.schema import AgentConfig
from agent.journal import Journal
from agent.journal.view import JournalView
from agent.model.commands import FAILED, Caller, CommandError
from agent.mqtt import RemoteOps, ping
from agent.rules.passes import PassVerifier
from cloud.signing import sign_command, write_keypair
from tests.support.broker import BrokerHandle

STORE = "demo-001"
KID = "test"


@dataclass
class Keys:
    key: Ed25519PrivateKey
    kid: str
    pub_file: Path

    def sign(self, cmd: str = "ping", args: dict[str, Any] | None = None, **kw: Any) -> str:
        return sign_command(self.key, self.kid, **({"store": STORE, "cmd": cmd, "args": args} | kw))

    def verifier(self) -> PassVerifier:
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        pub = load_pem_public_key(self.pub_file.read_bytes())
        return PassVerifier({self.kid: pub}, skew_seconds=60)  # type: ignore[dict-item]


def make_keys(tmp_path: Path, kid: str = KID) -> Keys:
    key = Ed25519PrivateKey.generate()
    files = write_keypair(tmp_path / "keys", kid, key=key)
    return Keys(key, kid, files.public_key)


def make_config(tmp_path: Path, url: str, **mqtt: Any) -> AgentConfig:
    raw = {
        "store": {"id": STORE, "name": "Test store"},
        "storage": {"dir": str(tmp_path / "agent")},
        "access": {
            "keys": [{"kid": KID, "pem_file": str(tmp_path / "keys" / "hub-signing.pub.pem")}]
        },
        "hub": {"url": "http://127.0.0.1:9"},
        "mqtt": {
            "url": url,
            "keepalive_seconds": 2,
            "reconnect_min_seconds": 0.05,
            "reconnect_max_seconds": 0.5,
        }
        | mqtt,
        "devices": [{"kind": "lockbus", "id": "lockbus-1", "port": "/dev/null", "boards": [1]}],
        "doors": [
            {
                "id": "front",
                "lock": {"type": "lockboard", "device": "lockbus-1", "board": 1, "channel": 1},
                "contact": {"type": "lock_feedback"},
            }
        ],
    }
    return AgentConfig.model_validate(raw)


@dataclass
class Recorder:
    """A command handler that remembers what it ran (in order)."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, cmd: str, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        self.calls.append((cmd, args))
        if cmd == "hold":
            await self.release.wait()
            return {"held": True}
        if cmd == "fail":
            raise CommandError(FAILED, "printer-1 is out of paper", device="printer-1")
        if cmd == "crash":
            raise RuntimeError("boom")
        if cmd == "unlock":
            return {"door": args.get("door"), "unlocked": True}
        return await ping(cmd, args, caller)  # and anything else is unknown_command


async def until(check: Callable[[], bool], within: float, step: float = 0.01) -> None:
    """Poll `check` until it holds; TimeoutError after `within` seconds."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 (a property, not an event, is what we wait for)
            await asyncio.sleep(step)


@dataclass
class Running:
    ops: RemoteOps
    journal: Journal
    handler: Recorder
    state: dict[str, Any]

    def events(self, type_prefix: str = "command.") -> list[tuple[str, dict[str, Any]]]:
        view = JournalView(self.journal.path)
        return [(e["type"], e["data"]) for e in view.events() if e["type"].startswith(type_prefix)]


def initial_state() -> dict[str, Any]:
    return {
        "doors": {"front": "locked"},
        "door_info": {"front": {"released": False, "lockdown": False, "occupancy": 0}},
        "devices": {"lockbus-1": "online"},
        "business": "open",
        "outbox_depth": 0,
    }


@contextlib.asynccontextmanager
async def running_ops(
    tmp_path: Path,
    keys: Keys,
    url: str,
    *,
    journal: Journal | None = None,
    connect: bool = True,
    **mqtt: Any,
) -> AsyncIterator[Running]:
    cfg = make_config(tmp_path, url, **mqtt)
    clock = Clock()
    own = journal is None
    if journal is None:
        journal = await Journal.open(tmp_path / "agent" / "journal.db", STORE, clock)
    state = initial_state()
    handler = Recorder()
    ops = RemoteOps(
        cfg,
        journal=journal,
        verifier=keys.verifier(),
        clock=clock,
        handle=handler,
        state=lambda: state,
        status_extra={"store": STORE},
    )
    await ops.start()
    try:
        if connect:
            async with asyncio.timeout(10):
                await ops.until_connected()
        yield Running(ops, journal, handler, state)
    finally:
        await ops.stop()
        if own:
            await journal.close()


@dataclass
class Seen:
    topic: str
    payload: bytes
    retain: bool
    properties: Any

    def json(self) -> Any:
        return json.loads(self.payload)


class Watcher:
    """An MQTT client of the test's own, straight to the broker, recording what arrives."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.seen: list[Seen] = []
        self._arrived = asyncio.Condition()

    async def next(
        self, topic: str, where: Callable[[Seen], bool] = lambda s: True, within: float = 5.0
    ) -> Seen:
        """The first message on `topic` matching `where` (already seen ones count)."""
        async with asyncio.timeout(within), self._arrived:
            while True:
                for s in self.seen:
                    if aiomqtt.Topic(s.topic).matches(topic) and where(s):
                        return s
                await self._arrived.wait()

    def on(self, topic: str) -> list[Seen]:
        return [s for s in self.seen if aiomqtt.Topic(s.topic).matches(topic)]

    async def _run(self) -> None:
        async for m in self.client.messages:
            payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
            async with self._arrived:
                self.seen.append(Seen(str(m.topic), payload, m.retain, m.properties))
                self._arrived.notify_all()


@contextlib.asynccontextmanager
async def watching(
    broker: BrokerHandle,
    *topics: str,
    user: str | None = None,
    password: str | None = None,
    v5: bool = True,
) -> AsyncIterator[Watcher]:
    client = aiomqtt.Client(
        broker.host,
        broker.port,
        username=user,
        password=password,
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
    )
    async with client:
        watcher = Watcher(client)
        for t in topics:
            await client.subscribe(t, qos=1)
        task = asyncio.get_running_loop().create_task(watcher._run())
        try:
            yield watcher
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task
