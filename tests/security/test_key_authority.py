"""Which hub keys the agent trusts: the config's `access.keys` are the anchors, and a key
that `keys.set` installed lives only as long as the chain of keys that vouched for it.

The attack: a hub key leaks; the thief signs `keys.set` with it and plants a key of their
own. The operator removes the leaked key from config.yaml and restarts: before, the
journal's key list won on every start, so the planted key still opened the door and the
config's other keys were ignored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from agent.app import Agent
from agent.config import load_config
from agent.journal import PutSetting
from agent.journal.view import JournalView
from agent.mqtt.commands import CommandRunner, Outcome
from agent.remote.commands import StoreCommands
from cloud.signing import load_private_key, mint_pass, sign_command, write_keypair
from runtime.systemd import Notifier
from tests.agent.app.conftest import events, gpio_config
from tests.e2e.test_door import _decision, reason, scan
from tests.e2e.test_remote_ops import publish_and_read_reply, retained, sign
from tests.support.agent import Keys, agent_command, make_keys, start_agent, write_config
from tests.support.broker import start_broker
from tests.support.inproc_agent import seed_journal
from tests.support.sim import SimHandle, wait_until

STORE = "demo-001"


def pem_of(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def second_anchor(run_dir: Path) -> tuple[Ed25519PrivateKey, str]:
    """The operator's second hub key, kid `ops`, in run_dir/keys-ops."""
    if not (run_dir / "keys-ops" / "hub-signing.pem").exists():
        write_keypair(run_dir / "keys-ops", "ops")
    return load_private_key(run_dir / "keys-ops" / "hub-signing.pem")


def with_keys(*kids: str, revoked: list[str] | None = None):
    folders = {"demo": "keys", "ops": "keys-ops"}

    def edit(raw: dict[str, Any]) -> None:
        raw["access"]["keys"] = [
            {"kid": k, "pem_file": f"${{SHOPGATE_RUN:-.run}}/{folders[k]}/hub-signing.pub.pem"}
            for k in kids
        ]
        if revoked:
            raw["access"]["revoked_kids"] = revoked

    return edit


def door(agent: Any, sim: SimHandle, token: str) -> str:
    seq = agent.journal.last_seq()
    scan(sim, token)
    return reason(_decision(agent, seq))


def test_a_key_planted_with_a_leaked_key_dies_with_it(
    sim: SimHandle, keys: Keys, run_dir: Path
) -> None:
    ops_key, _ = second_anchor(run_dir)
    evil = Ed25519PrivateKey.generate()
    broker = start_broker(run_dir)
    env = {"SHOPGATE_MQTT_URL": broker.url}
    try:
        config = write_config(run_dir, with_keys("demo", "ops"))
        with start_agent(run_dir, config, env=env):
            wait_until(
                lambda: retained(broker, f"shopgate/{STORE}/status").get("online"),
                10,
                "status online",
            )
            # The thief holds the `demo` key and plants their own.
            planted = sign(run_dir, "keys.set", {"keys": [{"kid": "evil", "pem": pem_of(evil)}]})
            reply = publish_and_read_reply(broker, planted)
            assert reply["ok"] is True, reply
        # The operator takes the leaked key out of the config and restarts the agent.
        config = write_config(run_dir, with_keys("ops"))
        with start_agent(run_dir, config, env=env) as agent:
            evil_pass = mint_pass(evil, "evil", store=STORE, scope="entry", sub="thief")
            assert door(agent, sim, evil_pass) == "unknown_key"
            assert door(agent, sim, keys.mint(scope="entry", sub="thief2")) == "unknown_key"
            ops_pass = mint_pass(ops_key, "ops", store=STORE, scope="entry", sub="alice")
            assert door(agent, sim, ops_pass) == "granted"
            dropped = agent.wait_event("keys.dropped")["data"]["dropped"]
            assert {"kid": "evil", "reason": "anchor_removed"} in dropped
    finally:
        broker.stop()


# --- in-process: the rules at work in a running agent (GPIO door on mock pins) -------


def pem_entry(kid: str, key: Ed25519PrivateKey) -> dict[str, str]:
    return {"kid": kid, "pem": pem_of(key)}


class Store:
    """A running agent and the operator's hands on its config."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.config = gpio_config(tmp_path)
        self.demo = make_keys(tmp_path)
        self.agent: Agent | None = None
        self.n = 0

    async def start(self) -> Agent:
        self.agent = Agent(self.config, load_config(self.config), Notifier(None))
        await self.agent.start()
        return self.agent

    async def restart(self) -> Agent:
        assert self.agent is not None
        await self.agent.stop()
        return await self.start()

    def edit(self, fn: Any) -> None:
        raw = yaml.safe_load(self.config.read_text())
        fn(raw)
        self.config.write_text(yaml.safe_dump(raw))

    def anchor(self, kid: str, key: Ed25519PrivateKey) -> None:
        path = self.tmp / "keys" / f"{kid}.pub.pem"
        path.write_text(pem_of(key))
        self.edit(lambda raw: raw["access"]["keys"].append({"kid": kid, "pem_file": str(path)}))

    async def command(self, key: Ed25519PrivateKey, kid: str, cmd: str, **args: Any) -> Outcome:
        """A command signed with `key`, through the same verification MQTT uses."""
        agent = self.agent
        assert agent is not None and agent.journal is not None
        runner = CommandRunner(
            store=STORE,
            journal=agent.journal,
            verifier=agent.verifier,
            clock=agent.clock,
            handle=StoreCommands(agent),
            skew_seconds=60,
        )
        outcome = await runner.run(sign_command(key, kid, store=STORE, cmd=cmd, args=args))
        await runner.record(outcome)
        return outcome

    async def door(self, key: Ed25519PrivateKey, kid: str) -> str:
        """What the door says to a fresh entry pass signed with `key`."""
        assert self.agent is not None and self.agent.store is not None
        self.n += 1
        token = mint_pass(key, kid, store=STORE, scope="entry", sub=f"visitor-{self.n}")
        return str((await self.agent.store.access.on_scan("back", token)).reason)

    def events(self, type_: str) -> list[dict[str, Any]]:
        return [e["data"] for e in events(self.agent, type_)]  # type: ignore[arg-type]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(tmp_path)
    await s.start()
    try:
        yield s
    finally:
        if s.agent is not None:
            await s.agent.stop()


async def test_revoking_a_leaked_rotated_key_drops_it_and_what_it_planted(store: Store) -> None:
    demo, b, evil = store.demo.key, Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    assert (await store.command(demo, "demo", "keys.set", keys=[pem_entry("b", b)])).ok
    # b leaks; the thief keeps b and plants their own key.
    planted = await store.command(
        b, "b", "keys.set", keys=[pem_entry("b", b), pem_entry("e", evil)]
    )
    assert planted.ok, planted
    assert await store.door(evil, "e") == "granted"
    store.edit(lambda raw: raw["access"].update(revoked_kids=["b"]))
    assert (await store.agent.reload())[0]  # type: ignore[union-attr]
    assert await store.door(evil, "e") == "unknown_key"
    assert await store.door(b, "b") == "unknown_key"
    assert await store.door(demo, "demo") == "granted"
    [dropped] = store.events("keys.dropped")
    assert sorted(d["kid"] for d in dropped["dropped"]) == ["b", "e"]
    # For good: taking the revocation out again does not bring them back.
    store.edit(lambda raw: raw["access"].pop("revoked_kids"))
    await store.restart()
    assert await store.door(evil, "e") == "unknown_key"


async def test_a_keys_set_cannot_take_the_config_key_away_or_replace_it(store: Store) -> None:
    demo, b = store.demo.key, Ed25519PrivateKey.generate()
    assert (await store.command(demo, "demo", "keys.set", keys=[pem_entry("b", b)])).ok
    swap = await store.command(b, "b", "keys.set", keys=[pem_entry("demo", b)])
    assert not swap.ok and swap.code == "bad_args" and "cannot replace" in swap.message
    alias = await store.command(b, "b", "keys.set", keys=[pem_entry("d2", demo)])
    assert not alias.ok and "under another kid" in alias.message
    # b signs a set without demo: demo stays, it is the config's.
    c = Ed25519PrivateKey.generate()
    only_c = await store.command(b, "b", "keys.set", keys=[pem_entry("c", c)])
    assert only_c.ok and only_c.result == {
        "kids": ["c", "demo"],
        "installed": ["c"],
        "anchors": ["demo"],
        "anchors_listed": [],
    }
    assert await store.door(demo, "demo") == "granted"
    assert await store.door(b, "b") == "unknown_key"  # replaced by the set it signed
    await store.restart()
    assert await store.door(c, "c") == "granted"  # a rotation survives the restart


async def test_the_journal_and_the_config_differing_is_said_loudly(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    b = Ed25519PrivateKey.generate()
    assert (await store.command(store.demo.key, "demo", "keys.set", keys=[pem_entry("b", b)])).ok
    caplog.set_level(logging.WARNING, logger="agent.services.hub_keys")
    await store.restart()
    assert "access.keys does not list" in caplog.text and "b (via demo)" in caplog.text
    [differ] = store.events("keys.differ")
    assert differ == {"anchors": ["demo"], "installed": [{"kid": "b", "via": ["demo"]}]}
    assert store.agent.status()["keys"]["installed"][0]["kid"] == "b"  # type: ignore[union-attr]


async def test_a_fleet_rotation_as_an_operator_runs_it(store: Store) -> None:
    """The hub moves from key `demo` to `hub-2`: keys.set signed with the old key, the hub
    signs with the new one, then config management makes hub-2 the anchor and retires
    demo. Nothing stops working on the way, and the old key is gone at the end."""
    demo, new = store.demo.key, Ed25519PrivateKey.generate()
    both = [pem_entry("demo", demo), pem_entry("hub-2", new)]
    assert (await store.command(demo, "demo", "keys.set", keys=both)).ok
    await store.restart()
    assert await store.door(new, "hub-2") == "granted"
    assert (await store.command(new, "hub-2", "ping")).ok  # the hub signs with hub-2 now
    store.anchor("hub-2", new)  # the config catches up: hub-2 is an anchor
    store.edit(lambda raw: raw["access"].update(keys=raw["access"]["keys"][1:]))  # demo retired
    await store.restart()
    assert await store.door(new, "hub-2") == "granted"
    assert await store.door(demo, "demo") == "unknown_key"
    assert store.agent.hub_keys.trust.installed == ()  # type: ignore[union-attr]
    retired = store.events("keys.dropped")[-1]["dropped"]
    assert retired == [{"kid": "hub-2", "reason": "copy_of_anchor"}]


async def test_keys_from_an_older_agent_are_adopted_then_die_with_any_config_key(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path)
    ops, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    store.anchor("ops", ops)
    legacy = [pem_entry("demo", store.demo.key), pem_entry("b", b)]
    await seed_journal(tmp_path, ops=[PutSetting("keys", legacy)])
    await store.start()
    try:
        assert await store.door(b, "b") == "granted"  # no outage on upgrade
        assert store.events("keys.adopted") == [{"kids": ["demo", "b"]}]
        settings = JournalView(tmp_path / "agent" / "journal.db").settings()
        assert settings["keys"] is None and [k["kid"] for k in settings["keys.installed"]] == ["b"]
        store.edit(lambda raw: raw["access"].update(keys=raw["access"]["keys"][:1]))  # ops out
        await store.restart()
        assert await store.door(b, "b") == "unknown_key"
    finally:
        await store.agent.stop()  # type: ignore[union-attr]


async def test_keys_reset_from_the_command_line_and_by_signed_command(store: Store) -> None:
    demo, b = store.demo.key, Ed25519PrivateKey.generate()
    assert (await store.command(demo, "demo", "keys.set", keys=[pem_entry("b", b)])).ok
    await store.agent.stop()  # type: ignore[union-attr]
    listed = await cli("keys", "list", "--config", str(store.config), "--json")
    assert json.loads(listed.stdout)["installed"][0]["kid"] == "b"
    reset = await cli("keys", "reset", "--config", str(store.config))
    assert reset.returncode == 0 and "dropped 1 installed key(s): b" in reset.stdout
    await store.start()
    assert await store.door(b, "b") == "unknown_key"
    assert store.events("keys.reset")[0]["dropped"] == ["b"]
    # The same, remotely: any trusted key may only take trust away with it.
    assert (await store.command(demo, "demo", "keys.set", keys=[pem_entry("b", b)])).ok
    outcome = await store.command(demo, "demo", "keys.reset")
    assert outcome.ok and outcome.result == {"dropped": ["b"], "kids": ["demo"]}
    assert await store.door(b, "b") == "unknown_key"


async def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [*agent_command(), *args], capture_output=True, text=True, timeout=30
    )
