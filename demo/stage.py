"""What every scene of the demo shares: where runtime files go, printing a line, waiting
for something to happen, and the simulator's control API (the hands of the people in
the story)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.journal.view import JournalView
from demo.commands import Commands
from demo.platform import StandInMeituan

REPO = Path(__file__).resolve().parents[1]
RUN = Path(os.environ.get("SHOPGATE_RUN", REPO / ".run")).resolve()
BIN = Path(sys.executable).parent
STORE = "demo-001"


def say(text: str) -> None:
    print(text, flush=True)


def wait_for(check: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.02)
    raise SystemExit(f"demo: timed out waiting for {what} (see {RUN}/*.log)")


def expect(ok: bool, what: str) -> None:
    """A step's outcome; the demo stops with the reason when the store did otherwise."""
    if not ok:
        raise SystemExit(f"demo: expected {what} (see {RUN}/*.log)")


class Sim:
    def __init__(self) -> None:
        self.log = open(RUN / "sim.log", "ab")
        control = RUN / "sim" / "control.json"
        control.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [
                str(BIN / "shopgate-sim"),
                "run",
                "--dir",
                str(RUN / "sim"),
                "--control",
                "127.0.0.1:0",
            ],
            stdout=self.log,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
        )
        info = wait_for(
            lambda: control.exists() and json.loads(control.read_text()), "the simulator"
        )
        self.url = f"http://{info['host']}:{info['port']}"

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read() or b"null")

    def scan(self, code: str) -> None:
        self.call("POST", "/scanners/scanner-front/scan", {"code": code})

    def contact(self, is_open: bool) -> None:
        self.call("POST", "/doors/front/contact", {"open": is_open})

    def unlocks(self) -> int:
        return self.call("GET", "/lockbus/lockbus-1")["boards"]["1"]["1"]["unlock_count"]


@dataclass
class Stage:
    """The running store and hub, as the scenes reach them."""

    sim: Sim
    journal: JournalView
    commands: Commands
    meituan: StandInMeituan
    hub_url: str
    store_token: str  # the store's own token (what its agent uploads with)
    merchant_token: str  # the owner's (hub.yaml merchants): dashboard and owner API
