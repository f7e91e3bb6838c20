"""Does each configured device answer its protocol?

With the agent running, its ports are its own (serial ports are opened exclusively), so
the doctor reads what the agent saw (health.json). Without it, each driver is started
here for a few seconds: a driver is online only once the device has answered (a lock
board its status query, a printer its status, a VMC its polls)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from agent.config.schema import AgentConfig
from agent.devices.base import DeviceError, DeviceEvent, DeviceOnline
from agent.devices.registry import build_device
from agent.doctor.report import Check, failed, passed

PROBE_S = 6.0

_FIX = (
    "check the device's power and cable, and that the port in the config is this device's "
    "(docs/install.md); `shopgate-agent doctor` again once it is on"
)


def from_health(cfg: AgentConfig, health: dict[str, Any]) -> list[Check]:
    seen = health.get("devices") or {}
    return [
        passed(f"device {d.id}", f"{d.kind}: answering (seen by the running agent)")
        if seen.get(d.id)
        else failed(f"device {d.id}", f"{d.kind}: not answering the running agent", _FIX)
        for d in cfg.devices
    ]


async def probe(cfg: AgentConfig, wait_s: float = PROBE_S) -> list[Check]:
    return list(await asyncio.gather(*(_probe_one(d, wait_s) for d in cfg.devices)))


async def _probe_one(dcfg: Any, wait_s: float) -> Check:
    name = f"device {dcfg.id}"
    answered = asyncio.Event()

    def sink(ev: DeviceEvent) -> None:
        if isinstance(ev, DeviceOnline):
            answered.set()

    try:
        device = build_device(dcfg, sink)
    except DeviceError as e:
        return failed(name, str(e), "correct the device's kind in the config")
    try:
        await device.start()
        if not device.online:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(answered.wait(), wait_s)
        if device.online:
            return passed(name, f"{dcfg.kind}: answering")
        return failed(name, f"{dcfg.kind}: no answer within {wait_s:.0f} s", _FIX)
    except (DeviceError, OSError) as e:
        return failed(name, f"{dcfg.kind}: {e}", _FIX)
    finally:
        with contextlib.suppress(Exception):
            await device.stop()
