"""shopgate-sim as a program: arguments, config errors, logs, stopping."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.sim import sim_command, start_sim


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*sim_command(), *args], capture_output=True, text=True, timeout=20, check=False
    )


def test_help_works() -> None:
    done = run_cli("run", "--help")
    assert done.returncode == 0
    assert "--control HOST:PORT" in done.stdout


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        ([], "command"),
        (["run", "--control", "127.0.0.1:0"], "--dir"),
        (["run", "--dir", "d", "--control", "localhost"], "HOST:PORT"),
        (["run", "--dir", "d", "--control", "127.0.0.1:70000"], "HOST:PORT"),
        (["run", "--dir", "d", "--control", "127.0.0.1:0", "--log-format", "xml"], "log-format"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], mentions: str) -> None:
    done = run_cli(*args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and mentions in lines[0], done.stderr


def test_a_bad_config_exits_2_naming_each_problem(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "devices:\n"
        "  - {id: bus, kind: lockbus, boards: [{address: 1, channels: 30}]}\n"
        "  - {id: bus, kind: scanner}\n"
        "  - {id: x, kind: toaster}\n"
        "  - id: y\n"
        "    kind: lockbus\n"
        "    boards: [{address: 2, compartments: true}]\n"
        "    doors: [{id: front, board: 2, channel: 1}]\n"
    )
    done = run_cli(
        "run", "--dir", str(tmp_path / "d"), "--control", "127.0.0.1:0", "--config", str(config)
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert any("devices.0.boards.0.channels" in line for line in lines), lines
    assert any("devices.2.kind" in line and "lockbus" in line for line in lines), lines
    assert any("locker board" in line for line in lines), lines
    assert all(line.startswith(str(config)) for line in lines), lines
    assert not (tmp_path / "d" / "devices.json").exists()


def test_a_missing_config_file_exits_2(tmp_path: Path) -> None:
    done = run_cli(
        "run",
        "--dir",
        str(tmp_path),
        "--control",
        "127.0.0.1:0",
        "--config",
        str(tmp_path / "nope.yaml"),
    )
    assert done.returncode == 2
    assert "nope.yaml: cannot read" in done.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_it_cleanly_within_5_s(tmp_path: Path, sig: signal.Signals) -> None:
    sim = start_sim(tmp_path)
    port = sim.open_serial("scanner-front")  # a client still attached must not hold it up
    try:
        started = time.monotonic()
        assert sim.stop(sig) == 0, sim.log()
        assert time.monotonic() - started < 5
    finally:
        port.close()
    assert "ready" in sim.log()
    # Nothing left that says the hardware is still there.
    assert not (sim.dir / "devices.json").exists()
    assert not (sim.dir / "control.json").exists()
    assert not (sim.dir / "scanner-front").is_symlink()


def test_json_logs_are_one_object_per_line(tmp_path: Path) -> None:
    sim = start_sim(tmp_path, args=["--log-format", "json"])
    sim.post("/scanners/scanner-front/scan", {"code": "secret-pass-token"})
    assert sim.stop() == 0
    records = [json.loads(line) for line in sim.log().splitlines()]
    assert any(r["msg"] == "ready" for r in records)
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    # A scanned pass is a credential: its text never reaches the log.
    assert "secret-pass-token" not in sim.log()


def test_a_custom_config_runs_just_its_devices(tmp_path: Path) -> None:
    config = tmp_path / "one.yaml"
    config.write_text('devices:\n  - {id: lane-2, kind: scanner, terminator: "\\n"}\n')
    with start_sim(tmp_path, config=config) as sim:
        assert set(sim.devices) == {"lane-2"}
        with sim.open_serial("lane-2") as port:
            sim.post("/scanners/lane-2/scan", {"code": "abc"})
            assert port.read_until(b"\n") == b"abc\n"
        status, _ = sim.request("GET", "/lockbus/lockbus-1")
        assert status == 404
