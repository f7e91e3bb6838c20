"""The shipped systemd units: they agree with the programs' command lines, keep the
sandbox the programs need and no more, and pass `systemd-analyze verify` and `security`
(where systemd is installed)."""

from __future__ import annotations

import io
import re
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


# Every unit: no privileges, a read-only system, its own /tmp, IP and unix sockets only,
# the system-service system calls without the privileged and resource ones.
SANDBOX = {
    "NoNewPrivileges": ["yes"],
    "ProtectSystem": ["strict"],
    "ProtectHome": ["yes"],
    "PrivateTmp": ["yes"],
    "PrivateMounts": ["yes"],
    "RemoveIPC": ["yes"],
    "CapabilityBoundingSet": [""],
    "AmbientCapabilities": [""],
    "ProtectKernelTunables": ["yes"],
    "ProtectKernelModules": ["yes"],
    "ProtectKernelLogs": ["yes"],
    "ProtectControlGroups": ["yes"],
    "ProtectProc": ["invisible"],
    "RestrictAddressFamilies": ["AF_UNIX AF_INET AF_INET6"],
    "RestrictNamespaces": ["yes"],
    "RestrictSUIDSGID": ["yes"],
    "LockPersonality": ["yes"],
    "SystemCallArchitectures": ["native"],
    "SystemCallFilter": ["@system-service", "~@privileged @resources"],
}


@pytest.mark.parametrize("unit", ["shopgate-agent.service", "shopgate-hub.service"])
def test_both_units_keep_the_sandbox(unit: str) -> None:
    d = directives(UNITS / unit)
    assert {k: d.get(k) for k in SANDBOX} == SANDBOX


def test_the_agent_can_open_only_its_device_classes() -> None:
    d = directives(UNITS / "shopgate-agent.service")
    assert d["DevicePolicy"] == ["closed"] and "PrivateDevices" not in d
    assert set(d["DeviceAllow"]) == {
        "char-ttyUSB rw",
        "char-ttyACM rw",
        "char-ttyAMA rw",
        "char-ttyS rw",
        "char-gpiochip rw",
        "char-input rw",  # USB HID scanners, /dev/input/event* (docs/checkout.md)
    }
    # ... and is in the groups that own them: serial ports, GPIO chips, input devices.
    assert d["SupplementaryGroups"] == ["dialout gpio input"]


def test_the_agent_may_not_hide_proc_files_gpiozero_needs(monkeypatch) -> None:
    # ProcSubset=pid would hide /proc/cpuinfo and /proc/device-tree: gpiozero (lgpio,
    # rpigpio, native) finds the Pi's revision there and no pin works without it.
    from gpiozero.pins import local

    assert "ProcSubset" not in directives(UNITS / "shopgate-agent.service")
    assert directives(UNITS / "shopgate-hub.service")["ProcSubset"] == ["pid"]
    hidden = False

    def proc(path, *args, **kwargs):  # /proc of a Pi 4 without a device tree link
        if path == "/proc/cpuinfo" and not hidden:
            return io.StringIO("processor\t: 0\nRevision\t: c03111\n")
        raise FileNotFoundError(2, "No such file or directory", path)

    monkeypatch.setattr(local.io, "open", proc)  # (local.io is the io module itself)
    assert local.get_pi_revision() == 0xC03111
    hidden = True
    with pytest.raises(FileNotFoundError):
        local.get_pi_revision()


def test_after_the_agent_every_gpio_relay_is_switched_off() -> None:
    d = directives(UNITS / "shopgate-agent.service")
    (exec_start,) = d["ExecStart"]
    (stop_post,) = d["ExecStopPost"]
    run, relock = shlex.split(exec_start), shlex.split(stop_post)
    assert relock[0] == run[0]  # the same program
    ns = agent_parser().parse_args(relock[1:])
    assert ns.command == "relock"
    assert ns.config == agent_parser().parse_args(run[1:]).config  # the same config


def test_a_failed_agent_is_journalled_by_the_alert_unit() -> None:
    d = directives(UNITS / "shopgate-agent.service")
    assert d["OnFailure"] == ["shopgate-alert@%n.service"]
    alert = directives(UNITS / "shopgate-alert@.service")
    assert alert["Type"] == ["oneshot"] and alert["DynamicUser"] == ["yes"]
    (echo,) = alert["ExecStart"]
    argv = shlex.split(echo)
    assert argv[0] == "/bin/echo" and argv[1].startswith("<2>%i has FAILED")  # crit


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


def installed(unit: str, tmp_path: Path) -> Path:
    """The unit with the programs pointed at /bin/true (they are not under /opt here),
    as a file systemd-analyze can load; any other complaint is a real one."""
    text = (UNITS / unit).read_text()
    text = text.replace("/opt/shopgate/.venv/bin/shopgate-agent", "/bin/true")
    text = text.replace("/opt/shopgate/.venv/bin/shopgate-hub", "/bin/true")
    if unit.endswith("@.service"):  # a template: load the instance OnFailure= starts
        unit = unit.replace("@.service", "@shopgate-agent.service.service")
    (tmp_path / unit).write_text(text)
    return tmp_path / unit


ALL_UNITS = ["shopgate-agent.service", "shopgate-hub.service", "shopgate-alert@.service"]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
@pytest.mark.parametrize("unit", ALL_UNITS)
def test_systemd_analyze_verify(unit: str, tmp_path: Path) -> None:
    r = subprocess.run(
        ["systemd-analyze", "verify", str(installed(unit, tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0 and r.stderr == "", r.stderr


# `systemd-analyze security` exposure, 0 (locked down) to 10; these are what the units
# score with systemd 252. The agent needs devices, groups and the network.
MAX_EXPOSURE = {
    "shopgate-agent.service": 1.7,
    "shopgate-hub.service": 1.3,
    "shopgate-alert@.service": 0.7,
}


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
@pytest.mark.parametrize("unit", ALL_UNITS)
def test_systemd_analyze_security(unit: str, tmp_path: Path) -> None:
    r = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(installed(unit, tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "--offline" in r.stderr:
        pytest.skip("this systemd-analyze has no --offline (systemd < 250)")
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", r.stdout)
    assert found, r.stdout + r.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE[unit], r.stdout
