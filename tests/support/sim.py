"""Start the real simulator (`shopgate-sim run`) as a subprocess and talk to it.

    with start_sim(tmp_path) as sim:
        sim.post("/scanners/scanner-front/scan", {"code": "abc"})
        port = serial.Serial(str(sim.link("scanner-front")), 9600, timeout=2)

The simulator's log goes to `<tmp_path>/sim.log`; a failed start raises with its tail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import serial

from tests.support.process import ProcessHandle

T = TypeVar("T")

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0


def sim_command() -> list[str]:
    beside_python = Path(sys.executable).with_name("shopgate-sim")
    found = str(beside_python) if beside_python.exists() else shutil.which("shopgate-sim")
    if found is None:
        raise RuntimeError("shopgate-sim is not installed: pip install -e '.[test]'")
    return [found]


def wait_until(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll `check` until it returns something other than None/False."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


class SimRequestError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


@dataclass
class SimHandle(ProcessHandle):
    name = "shopgate-sim"

    proc: subprocess.Popen[bytes]
    dir: Path
    control_url: str
    devices: dict[str, dict[str, Any]]
    log_path: Path

    def link(self, device_id: str) -> Path:
        """The stable symlink to the device's current pseudo-terminal."""
        return self.dir / device_id

    def open_serial(self, device_id: str, timeout: float = 1.0) -> serial.Serial:
        """Open the device's pty the way the agent does (9600 baud, pyserial)."""
        return serial.Serial(str(self.link(device_id)), 9600, timeout=timeout)

    def read_devices(self) -> dict[str, dict[str, Any]] | None:
        """devices.json as it is now (None while absent)."""
        try:
            return json.loads((self.dir / "devices.json").read_text())
        except FileNotFoundError:
            return None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, decoded JSON body) for any status."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.control_url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode(errors="replace")

    def get(self, path: str) -> Any:
        status, body = self.request("GET", path)
        if status >= 300:
            raise SimRequestError(status, body)
        return body

    def post(self, path: str, body: Any) -> Any:
        status, reply = self.request("POST", path, body)
        if status >= 300:
            raise SimRequestError(status, reply)
        return reply


def start_sim(
    tmp_path: Path,
    *,
    config: Path | None = None,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> SimHandle:
    """Run `shopgate-sim run --dir tmp_path/sim --control 127.0.0.1:0` until it is ready."""
    run_dir = tmp_path / "sim"
    log_path = tmp_path / "sim.log"
    cmd = [*sim_command(), "run", "--dir", str(run_dir), "--control", "127.0.0.1:0"]
    if config is not None:
        cmd += ["--config", str(config)]
    cmd += list(args)
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    def ready() -> dict[str, Any] | None:
        if proc.poll() is not None:
            raise RuntimeError(
                f"shopgate-sim exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}"
            )
        try:
            control = json.loads((run_dir / "control.json").read_text())
            devices = json.loads((run_dir / "devices.json").read_text())
        except FileNotFoundError:
            return None
        return {"control": control, "devices": devices}

    try:
        found = wait_until(ready, START_TIMEOUT_S, "shopgate-sim to write control.json")
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
    control = found["control"]
    return SimHandle(
        proc=proc,
        dir=run_dir,
        control_url=f"http://{control['host']}:{control['port']}",
        devices=found["devices"],
        log_path=log_path,
    )
