"""A GPIO door through the whole agent, in-process: a relay-driven strike, a reed
contact and an exit button on gpiozero's MockFactory pins, a scanner on a real pty,
a real journal. Checks what an installer would check with a multimeter: the relay
energises on a grant, drops when the door closes, and an exit press releases it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from agent.app import Agent
from agent.config import load_config
from agent.runtime.systemd import Notifier
from tests.support.agent import make_keys
from tests.support.pty_devices import FakePort, eventually

RELAY, CONTACT, EXIT = 17, 27, 22


def gpio_config(tmp: Path, *, fail_safe: bool = False) -> Path:
    keys = make_keys(tmp)
    assert keys.kid == "demo"
    cfg = {
        "store": {"id": "demo-001", "timezone": "Asia/Shanghai"},
        "storage": {"dir": "agent"},
        "access": {"keys": [{"kid": "demo", "pem_file": "keys/hub-signing.pub.pem"}]},
        "hub": {"url": "http://127.0.0.1:9"},
        "mqtt": {"url": "mqtt://127.0.0.1:9"},
        "devices": [
            {"id": "gpio", "kind": "gpio", "pin_factory": "mock"},
            {"id": "scanner-back", "kind": "scanner", "port": "scanner-back"},
        ],
        "doors": [
            {
                "id": "back",
                "lock": {"type": "gpio", "device": "gpio", "pin": RELAY, "fail_safe": fail_safe},
                "contact": {"type": "gpio", "device": "gpio", "pin": CONTACT},
                "exit_button": {"type": "gpio", "device": "gpio", "pin": EXIT},
                "scanner": "scanner-back",
                "unlock_seconds": 1,
            }
        ],
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
async def running(tmp_path: Path):
    scanner = FakePort(tmp_path / "scanner-back")
    config = gpio_config(tmp_path)
    agent = Agent(config, load_config(config), Notifier(None))
    await agent.start()
    board = agent.store.devices["gpio"]
    pins = board.pin_factory
    # The reed contact reads "closed" (pulled up, switch to ground = active when open):
    # drive it high = inactive = closed before the test begins.
    pins.pin(CONTACT).drive_high()
    pins.pin(EXIT).drive_high()
    await asyncio.sleep(0.1)
    try:
        yield agent, scanner, pins
    finally:
        await agent.stop()
        scanner.unplug()


def events(agent: Agent, type_: str) -> list[dict]:
    from agent.journal.view import JournalView

    return JournalView(agent.cfg.storage.dir / "journal.db").events(type_)


async def test_grant_energises_the_strike_and_closing_the_door_drops_it(running):
    agent, scanner, pins = running
    relay = pins.pin(RELAY)
    assert relay.state == 0  # fail-secure strike: unpowered = locked at start
    keys = make_keys(agent.cfg.storage.dir.parent)
    scanner.write(keys.mint(scope="entry", sub="gina").encode() + b"\r\n")
    await eventually(lambda: relay.state == 1)
    pins.pin(CONTACT).drive_low()  # door opens
    await eventually(lambda: bool(events(agent, "door.opened")))
    assert events(agent, "door.opened")[0]["data"]["by"] == "grant"
    pins.pin(CONTACT).drive_high()  # door closes
    await eventually(lambda: relay.state == 0)
    await eventually(lambda: bool(events(agent, "door.locked")))
    assert not events(agent, "door.forced")


async def test_unopened_grant_relocks_after_unlock_seconds(running):
    agent, scanner, pins = running
    keys = make_keys(agent.cfg.storage.dir.parent)
    scanner.write(keys.mint(scope="entry", sub="hal").encode() + b"\r\n")
    await eventually(lambda: pins.pin(RELAY).state == 1)
    await eventually(lambda: pins.pin(RELAY).state == 0, within=3)
    await eventually(lambda: bool(events(agent, "door.locked")))
    assert events(agent, "door.locked")[-1]["data"]["why"] == "not_opened"


async def test_exit_button_releases_and_is_not_forced(running):
    agent, _, pins = running
    pins.pin(EXIT).drive_low()  # pressed
    await eventually(lambda: pins.pin(RELAY).state == 1)
    pins.pin(EXIT).drive_high()
    pins.pin(CONTACT).drive_low()
    await eventually(lambda: bool(events(agent, "door.opened")))
    assert events(agent, "door.opened")[0]["data"]["by"] == "exit"
    assert not events(agent, "door.forced")


async def test_contact_without_grant_is_forced(running):
    agent, _, pins = running
    pins.pin(CONTACT).drive_low()
    await eventually(lambda: bool(events(agent, "door.forced")))
    assert pins.pin(RELAY).state == 0
