"""The shipped systemd units: they agree with the programs' command lines and pass
`systemd-analyze verify` (where systemd is installed)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.cli import _parser as agent_parser
from cloud.cli import build_parser as hub_parser

UNITS = Path(__file__).resolve().parents[3] / "systemd"


def directives(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_agent_unit_is_notify_with_watchdog_and_sandbox() -> None:
    d = directives(UNITS / "shopgate-agent.service")
    assert d["Type"] == ["notify"] and d["NotifyAccess"] == ["main"]
    assert d["WatchdogSec"] == ["30"] and d["Restart"] == ["on-failure"]
    assert d["User"] == ["shopgate"] and d["CapabilityBoundingSet"] == [""]
    assert d["ProtectSystem"] == ["strict"] and d["ReadWritePaths"] == ["/var/lib/shopgate"]
    assert {"char-ttyUSB rw", "char-ttyACM rw", "char-gpiochip rw"} <= set(d["DeviceAllow"])


@pytest.mark.parametrize(
    ("unit", "parser"),
    [("shopgate-agent.service", agent_parser), ("shopgate-hub.service", hub_parser)],
)
def test_exec_start_is_a_valid_command_line(unit: str, parser) -> None:
    (exec_start,) = directives(UNITS / unit)["ExecStart"]
    argv = shlex.split(exec_start)
    assert argv[0].startswith("/opt/shopgate/.venv/bin/")
    ns = parser().parse_args(argv[1:])  # exits 2 (fails the test) on an unknown option
    assert ns.command == "run" and ns.log_format == "json"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
@pytest.mark.parametrize("unit", ["shopgate-agent.service", "shopgate-hub.service"])
def test_systemd_analyze_verify(unit: str, tmp_path: Path) -> None:
    # the programs are not installed under /opt here; any other complaint is a real one
    text = (UNITS / unit).read_text()
    text = text.replace("/opt/shopgate/.venv/bin/shopgate-agent", "/bin/true")
    text = text.replace("/opt/shopgate/.venv/bin/shopgate-hub", "/bin/true")
    (tmp_path / unit).write_text(text)
    r = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0 and r.stderr == "", r.stderr
