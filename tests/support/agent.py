"""Run the real agent (`shopgate-agent run`) as a subprocess against the simulator.

    keys = make_keys(tmp_path)
    with start_sim(tmp_path) as sim, start_agent(tmp_path) as agent:
        sim.post("/scanners/scanner-front/scan", {"code": keys.mint(scope="entry", sub="a")})
        agent.wait_event("access.granted")

The agent uses the repository's demo config.yaml with SHOPGATE_RUN=tmp_path, so the
simulator's links (tmp_path/sim/<id>) and the key (tmp_path/keys) are where it looks.
What the agent did is read back from its journal (a real SQLite file, read-only).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.journal.view import JournalView
from cloud.signing import load_private_key, mint_pass, write_keypair
from tests.support.process import ProcessHandle
from tests.support.sim import wait_until

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "config.yaml"
START_TIMEOUT_S = 15.0
# Unless a test gives its own hub or broker, the agent talks to closed ports: never to a
# broker or hub that happens to run on this machine's default ports.
ISOLATED = {"SHOPGATE_MQTT_URL": "mqtt://127.0.0.1:9", "SHOPGATE_HUB_URL": "http://127.0.0.1:9"}


@dataclass
class Keys:
    key: Ed25519PrivateKey
    kid: str
    store: str = "demo-001"

    def mint(self, **kw: Any) -> str:
        return mint_pass(self.key, self.kid, **({"store": self.store, "door": None} | kw))


def make_keys(run_dir: Path, kid: str = "demo") -> Keys:
    keys_dir = run_dir / "keys"
    if not (keys_dir / "hub-signing.pem").exists():
        write_keypair(keys_dir, kid)
    key, kid = load_private_key(keys_dir / "hub-signing.pem")
    return Keys(key, kid)


def write_config(run_dir: Path, edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """The demo config, optionally edited, written beside the run folder."""
    if edit is None:
        return DEMO_CONFIG
    raw = yaml.safe_load(DEMO_CONFIG.read_text())
    edit(raw)
    path = run_dir / "config.yaml"
    # ${SHOPGATE_RUN:-.run} would now resolve against run_dir: that is what we want.
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return path


def seed_orders(run_dir: Path, orders: Iterable[dict[str, Any]]) -> None:
    """Put pending orders into the agent's journal before it starts (the internal API)."""
    import asyncio

    from agent.clock import Clock
    from agent.journal import Journal
    from agent.services.orders import PendingOrders

    async def go() -> None:
        storage = run_dir / "agent"
        storage.mkdir(parents=True, exist_ok=True)
        journal = await Journal.open(storage / "journal.db", "demo-001", Clock())
        try:
            await PendingOrders(journal, {}, code_length=6).upsert(orders)
        finally:
            await journal.close()

    asyncio.run(go())


@dataclass
class AgentHandle(ProcessHandle):
    name = "agent"

    proc: subprocess.Popen[bytes]
    run_dir: Path
    log_path: Path
    journal: JournalView

    def wait_event(
        self,
        type_: str,
        where: Callable[[dict[str, Any]], bool] = lambda e: True,
        *,
        after_seq: int = 0,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            self._check_alive()
            return next((e for e in self.journal.events(type_, after_seq) if where(e)), None)

        try:
            return wait_until(found, timeout, f"event {type_}")
        except TimeoutError as e:
            raise TimeoutError(f"{e}\n--- agent log ---\n{self.log()[-3000:]}") from None

    def _check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"agent exited with {self.proc.returncode}:\n{self.log()[-3000:]}")


def agent_command() -> list[str]:
    return [str(Path(sys.executable).with_name("shopgate-agent"))]


def start_agent(
    run_dir: Path,
    config: Path = DEMO_CONFIG,
    *,
    wrap: list[str] | None = None,
    env: dict[str, str] | None = None,
    wait_ready: bool = True,
) -> AgentHandle:
    """Start the agent; `wrap` prefixes the command (e.g. ["unshare", "--net"])."""
    log_path = run_dir / f"agent-{len(list(run_dir.glob('agent-*.log')))}.log"
    journal = JournalView(run_dir / "agent" / "journal.db")
    before = journal.last_seq()
    cmd = [*(wrap or []), *agent_command(), "run", "--config", str(config)]
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **ISOLATED, "SHOPGATE_RUN": str(run_dir), **(env or {})},
        )
    handle = AgentHandle(proc, run_dir, log_path, journal)
    if wait_ready:
        try:
            handle.wait_event("agent.started", after_seq=before, timeout=START_TIMEOUT_S)
            # The door is ready once its contact has been read from the lock board.
            wait_until(lambda: "ready" in handle.log() or None, START_TIMEOUT_S, "agent ready")
        except BaseException:
            handle.stop(signal.SIGKILL)
            raise
    return handle
