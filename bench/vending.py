"""How fast the vending driver answers the VMC, measured on the wire. Prints JSON.

Runs the real simulator (`shopgate-sim`, its demo vending-1 on a pty at 57600) and the
real driver (agent/devices/vending.py) in this process, with traffic: price and stock
updates and vends. The simulated VMC times every answer from the frame it wrote to the
answer it read back (two pty hops included), so its figures bound the driver's own.

Target: every poll answered within 100 ms (late = missed = 0); p99 well under that.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from agent.config.schema import VendingDevice
from agent.devices.vending import VendingMachine


def sim_command() -> str:
    beside = Path(sys.executable).with_name("shopgate-sim")
    found = str(beside) if beside.exists() else shutil.which("shopgate-sim")
    if found is None:
        raise SystemExit("shopgate-sim is not installed")
    return found


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


async def run(run_dir: Path, seconds: float, control: str) -> dict[str, Any]:
    cfg = VendingDevice.model_validate(
        {"kind": "vending", "id": "vending-1", "port": run_dir / "vending-1"}
    )
    machine = VendingMachine(cfg, lambda _ev: None)
    await machine.start()
    before = await asyncio.to_thread(get, control)
    started = time.monotonic()
    vends: dict[str, int] = {}
    try:
        while time.monotonic() - started < seconds:
            await asyncio.gather(machine.set_price(1, 350), machine.set_inventory(2, 8))
            result = await machine.vend(1 + len(vends) % 3)
            vends[result] = vends.get(result, 0) + 1
            await asyncio.sleep(0.5)
        after = await asyncio.to_thread(get, control)
    finally:
        await machine.stop()
    wire, was = after["wire"], before["wire"]
    return {
        "seconds": round(time.monotonic() - started, 1),
        "polls": wire["polls"] - was["polls"],
        "answered_in_time": wire["answered"] - was["answered"],
        "late": wire["late"] - was["late"],
        "missed": wire["missed"] - was["missed"],
        "answer_p50_ms_on_wire": wire["answer_p50_ms"],
        "answer_p99_ms_on_wire": wire["answer_p99_ms"],
        "answer_max_ms_on_wire": round(wire["max_answer_ms"], 3),
        "driver_answer_max_us": machine.counters.answer_max_us,
        "vends": vends,
        "target": {"late": 0, "missed": 0, "answer_ms": 100},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "sim"
        proc = subprocess.Popen(
            [sim_command(), "run", "--dir", str(run_dir), "--control", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 15
            while not (run_dir / "control.json").exists():
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("shopgate-sim did not start")
                time.sleep(0.05)
            ctl = json.loads((run_dir / "control.json").read_text())
            control = f"http://{ctl['host']}:{ctl['port']}/vending/vending-1"
            result = asyncio.run(run(run_dir, args.seconds, control))
        finally:
            proc.terminate()
            proc.wait(10)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
