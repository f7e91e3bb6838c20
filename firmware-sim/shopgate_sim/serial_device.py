"""A device on one pseudo-terminal, which can be unplugged and replugged."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging

from shopgate_sim.device import DeviceUnplugged, SimDevice
from shopgate_sim.pty_port import PortClosed, PtyPort

log = logging.getLogger(__name__)


class SerialDevice(SimDevice):
    """Subclasses implement `received` (bytes from the agent) and call `send`."""

    def __init__(self, device_id: str) -> None:
        super().__init__(device_id)
        self._port: PtyPort | None = None
        self._replug: asyncio.Task[None] | None = None

    @property
    def path(self) -> str | None:
        return self._port.path if self._port is not None else None

    @property
    def plugged(self) -> bool:
        return self._port is not None

    @abc.abstractmethod
    def received(self, data: bytes) -> None:
        """Bytes the agent wrote to the port (called on the loop)."""

    def plugged_in(self) -> None:
        """Called after a new port appears (at start and on replug): reset framing state."""

    def send(self, data: bytes) -> None:
        if self._port is None:
            raise DeviceUnplugged(f"{self.id} is unplugged")
        try:
            self._port.write(data)
        except PortClosed as exc:
            raise DeviceUnplugged(str(exc)) from exc

    def _plug(self) -> None:
        self._port = PtyPort(self.id, self.received)
        self.plugged_in()
        log.info("%s: on %s", self.id, self._port.path)
        self.port_changed(self)

    async def start(self) -> None:
        self._plug()

    async def stop(self) -> None:
        if self._replug is not None:
            self._replug.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replug
            self._replug = None
        if self._port is not None:
            self._port.close()
            self._port = None

    async def unplug(self, seconds: float) -> None:
        if self._port is None:
            raise DeviceUnplugged(f"{self.id} is already unplugged")
        self._port.close()
        self._port = None
        log.info("%s: unplugged for %.3g s", self.id, seconds)
        self.port_changed(self)
        self._replug = asyncio.create_task(self._replug_after(seconds), name=f"replug {self.id}")

    async def _replug_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._replug = None
        self._plug()
