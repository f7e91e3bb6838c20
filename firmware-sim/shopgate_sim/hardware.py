"""The simulated store's hardware: every device, and the files that tell others where
each one is (DIR/<device id> symlinks and DIR/devices.json)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from shopgate_sim.device import SimDevice

log = logging.getLogger(__name__)

DEVICES_FILE = "devices.json"
CONTROL_FILE = "control.json"


def write_json_atomically(path: Path, data: object) -> None:
    """Readers polling for the file never see it half written."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class Hardware:
    def __init__(self, run_dir: Path, devices: Mapping[str, SimDevice]) -> None:
        self.run_dir = run_dir
        self.devices = dict(devices)
        self._started = False
        for device in self.devices.values():
            device.port_changed = self._port_changed

    def describe(self) -> dict[str, dict[str, object]]:
        return {device_id: d.describe() for device_id, d in sorted(self.devices.items())}

    async def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # A devices.json left by an earlier run would tell waiting tests we are up.
        for name in (DEVICES_FILE, CONTROL_FILE):
            with contextlib.suppress(FileNotFoundError):
                (self.run_dir / name).unlink()
        for device in self.devices.values():
            await device.start()
        self._started = True
        self.publish()

    async def stop(self) -> None:
        self._started = False
        for device in self.devices.values():
            try:
                await device.stop()
            except Exception:
                log.exception("%s: stop failed", device.id)
        for name in (DEVICES_FILE, CONTROL_FILE, *self.devices):
            with contextlib.suppress(FileNotFoundError):
                (self.run_dir / name).unlink()

    def _port_changed(self, device: SimDevice) -> None:
        if self._started:
            self.publish()

    def publish(self) -> None:
        """Point every symlink at its device's current node, then rewrite devices.json.
        A device on TCP instead gets a one-line file `HOST:PORT` under its id (what an
        agent config names, as it names a serial device's symlink)."""
        for device_id, device in self.devices.items():
            link = self.run_dir / device_id
            if device.path is None:
                with contextlib.suppress(FileNotFoundError):
                    link.unlink()
                if device.tcp_port is not None:
                    tmp = self.run_dir / f".{device_id}.address"
                    tmp.write_text(f"127.0.0.1:{device.tcp_port}\n", encoding="ascii")
                    os.replace(tmp, link)
                continue
            tmp = self.run_dir / f".{device_id}.link"
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(device.path)
            os.replace(tmp, link)
        write_json_atomically(self.run_dir / DEVICES_FILE, self.describe())
