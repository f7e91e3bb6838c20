"""An in-process agent with a GPIO door (gpiozero MockFactory) and a pty scanner."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from agent.app import Agent
from agent.config import load_config
from agent.journal.view import JournalView
from runtime.systemd import Notifier
from tests.support.agent import make_keys
from tests.support.pty_devices import FakePort

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
    return JournalView(agent.cfg.storage.dir / "journal.db").events(type_)
