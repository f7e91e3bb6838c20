"""Running the simulator: devices up, files written, control API served, until a signal."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from aiohttp import web

from shopgate_sim.config import ConfigError
from shopgate_sim.control import build_app
from shopgate_sim.device import DeviceSpec
from shopgate_sim.hardware import CONTROL_FILE, Hardware, write_json_atomically
from shopgate_sim.registry import KINDS

log = logging.getLogger(__name__)

# Control requests still running at shutdown get this long; SIGTERM must finish in 5 s.
SHUTDOWN_GRACE_S = 1.0


def build_hardware(run_dir: Path, specs: list[DeviceSpec]) -> Hardware:
    return Hardware(run_dir, {spec.id: KINDS[spec.kind].build(spec) for spec in specs})


async def run_sim(run_dir: Path, host: str, port: int, specs: list[DeviceSpec]) -> None:
    """Raises ConfigError for wiring problems, OSError when the control port is unusable."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    hardware = build_hardware(run_dir, specs)
    try:
        app = build_app(hardware)
    except ValueError as exc:
        raise ConfigError([str(exc)]) from exc
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_GRACE_S)
    await runner.setup()
    try:
        await hardware.start()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        write_json_atomically(run_dir / CONTROL_FILE, {"host": bound_host, "port": bound_port})
        log.info("control API on http://%s:%d", bound_host, bound_port)
        for device_id, entry in hardware.describe().items():
            log.info("%s (%s) at %s", device_id, entry["kind"], entry["path"] or entry["port"])
        log.info("ready")
        await stop.wait()
        log.info("stopping")
    finally:
        await runner.cleanup()
        await hardware.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
