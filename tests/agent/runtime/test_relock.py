"""`shopgate-agent relock` (the agent unit's ExecStopPost): GPIO relays as a dead agent
left them, switched off on gpiozero's MockFactory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from gpiozero.pins.mock import MockFactory

from agent.config.schema import AgentConfig
from agent.devices.gpio import GpioBoard
from agent.runtime.relock import relock
from tests.support.agent import make_keys
from tests.support.pty_devices import Events

STRIKE, MAGLOCK, LOW_STRIKE = 17, 18, 22


def raw_config(tmp_path: Path) -> dict[str, Any]:
    make_keys(tmp_path)
    gpio = {"type": "gpio", "device": "gpio"}
    return {
        "store": {"id": "demo-001"},
        "storage": {"dir": str(tmp_path / "agent")},
        "access": {"keys": [{"kid": "demo", "pem_file": "keys/hub-signing.pub.pem"}]},
        "hub": {"url": "http://127.0.0.1:9"},
        "mqtt": {"url": "mqtt://127.0.0.1:9"},
        "devices": [
            {"id": "gpio", "kind": "gpio", "pin_factory": "mock"},
            {"id": "lockbus-1", "kind": "lockbus", "port": "/dev/null", "boards": [1]},
        ],
        "doors": [
            {"id": "front", "lock": gpio | {"pin": STRIKE}},
            {"id": "back", "lock": gpio | {"pin": MAGLOCK, "fail_safe": True}},
            {"id": "side", "lock": gpio | {"pin": LOW_STRIKE, "active_high": False}},
            {
                "id": "store-room",
                "lock": {"type": "lockboard", "device": "lockbus-1", "board": 1, "channel": 1},
            },
        ],
    }


def config(tmp_path: Path) -> AgentConfig:
    raw = raw_config(tmp_path)
    raw["access"]["keys"][0]["pem_file"] = str(tmp_path / "keys" / "hub-signing.pub.pem")
    return AgentConfig.model_validate(raw)


def test_relays_a_dead_agent_left_energised_are_switched_off(tmp_path: Path) -> None:
    pins = MockFactory()
    # The lines as an agent that died mid-grant left them: every relay energised (the
    # strikes released; the maglock held, as always while the agent ran).
    pins.pin(STRIKE).output_with_state(1)
    pins.pin(MAGLOCK).output_with_state(1)
    pins.pin(LOW_STRIKE).output_with_state(0)  # an active-low board energises on low
    report = relock(config(tmp_path), factories={"gpio": pins})
    assert pins.pin(STRIKE).state == 0  # strike unpowered: locked
    assert pins.pin(LOW_STRIKE).state == 1  # the same, on an active-low board
    assert pins.pin(MAGLOCK).state == 0  # maglock unpowered: open (nobody reads its exit)
    assert all(item.ok for item in report)
    lines = {item.door: item.line for item in report}
    assert lines["front"] == "pin 17: relay off, strike unpowered: locked"
    assert lines["back"] == "pin 18: relay off, maglock unpowered: OPEN until the agent runs again"
    assert lines["store-room"] == "lock board: relocks by itself"


async def test_what_the_agent_still_holds_is_reported_and_the_rest_switched(
    tmp_path: Path,
) -> None:
    board = GpioBoard(config(tmp_path).devices[0], Events())  # type: ignore[arg-type]
    lock = board.relay_lock(STRIKE)
    await board.start()
    await lock.unlock(60)
    board.pin_factory.pin(LOW_STRIKE).output_with_state(0)
    try:
        report = relock(config(tmp_path), factories={"gpio": board.pin_factory})
        front, _, side, _ = report
        assert not front.ok and "pin 17: NOT switched" in front.line
        assert board.pin_factory.pin(STRIKE).state == 1  # still the agent's to switch
        assert side.ok and board.pin_factory.pin(LOW_STRIKE).state == 1
    finally:
        await board.stop()


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_the_command_line_prints_each_door_and_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw_config(tmp_path)))
    r = run_cli("relock", "--config", str(path))
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.splitlines() == [
        "shopgate-agent relock: door front: pin 17: relay off, strike unpowered: locked",
        "shopgate-agent relock: door back: pin 18: relay off, "
        "maglock unpowered: OPEN until the agent runs again",
        "shopgate-agent relock: door side: pin 22: relay off, strike unpowered: locked",
        "shopgate-agent relock: door store-room: lock board: relocks by itself",
    ]


def test_how_the_agent_ended_is_said_first(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw_config(tmp_path)))
    # What systemd gives ExecStopPost after a watchdog kill.
    ended = {"SERVICE_RESULT": "watchdog", "EXIT_CODE": "killed", "EXIT_STATUS": "ABRT"}
    r = run_cli("relock", "--config", str(path), env=ended)
    assert r.returncode == 0
    assert r.stdout.splitlines()[0] == (
        "shopgate-agent relock: the agent ended badly: watchdog (killed ABRT)"
    )


@pytest.mark.parametrize("text", ["doors: [", "store: {}\n"])
def test_a_bad_config_exits_2_with_the_problem(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    r = run_cli("relock", "--config", str(path))
    assert r.returncode == 2 and str(path) in r.stderr
