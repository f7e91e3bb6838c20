"""Real pseudo-terminals standing in for serial devices, and an event recorder.

The driver opens a symlink (as it would /dev/serial/by-id/...) that points at a pty's
slave side; the test plays the device on the master side. Unplugging closes the pty;
replugging makes a new one and swaps the symlink, as udev does with a new ttyUSB.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import tty
from collections.abc import Callable
from pathlib import Path

from agent.devices.base import DeviceEvent


class FakePort:
    """The device end of a serial port: a pty whose slave is reachable by `path`."""

    def __init__(self, path: Path, on_bytes: Callable[[bytes], None] | None = None) -> None:
        self.path = path
        self.received = bytearray()
        self.writes: list[tuple[int, bytes]] = []  # (perf_counter_ns, chunk) per read
        self._on_bytes = on_bytes
        self._master = -1
        self._slave = -1
        self._loop = asyncio.get_running_loop()
        self.plug()

    def plug(self, pty: tuple[int, int] | None = None) -> None:
        """Connect a new pty (or the given (master, slave) pair) behind the path."""
        self._master, self._slave = pty or os.openpty()
        # Raw on both ends: no echo, no CR/LF translation, bytes pass as they are.
        tty.setraw(self._master)
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        tmp = self.path.with_name(self.path.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.ttyname(self._slave))
        os.replace(tmp, self.path)  # atomic, like udev updating a by-id link
        self._loop.add_reader(self._master, self._readable)

    def unplug(self) -> None:
        if self._master < 0:
            return
        self._loop.remove_reader(self._master)
        os.close(self._master)
        os.close(self._slave)
        self._master = self._slave = -1
        self.path.unlink()  # as udev removes a by-id link when the device goes

    def write(self, data: bytes) -> None:
        os.write(self._master, data)

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except OSError:
            return
        self.writes.append((time.perf_counter_ns(), data))
        self.received += data
        if self._on_bytes is not None:
            self._on_bytes(data)


class Events:
    """An EventSink that records events and lets tests wait for them."""

    def __init__(self) -> None:
        self.items: list[DeviceEvent] = []
        self._changed = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self.threads: set[int] = set()

    def __call__(self, event: DeviceEvent) -> None:
        import threading

        self.threads.add(threading.get_ident())
        self.items.append(event)
        self._changed.set()

    def of(self, cls: type) -> list:
        return [e for e in self.items if isinstance(e, cls)]

    async def wait_for(
        self, predicate: Callable[[list[DeviceEvent]], bool], within: float = 3.0
    ) -> None:
        async with asyncio.timeout(within):
            while not predicate(self.items):
                self._changed.clear()
                await self._changed.wait()

    async def wait_count(self, cls: type, n: int, within: float = 3.0) -> list:
        await self.wait_for(lambda _: len(self.of(cls)) >= n, within)
        return self.of(cls)


async def eventually(check: Callable[[], bool], within: float = 3.0) -> None:
    """Poll a condition that no event announces (what the far end of a pty received)."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - nothing to wait on but the condition itself
            await asyncio.sleep(0.005)
