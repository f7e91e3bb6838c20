"""One simulated serial cable: a pseudo-terminal whose master end the simulator drives.

The slave end is what the agent opens with pyserial. It is put in raw mode so the line
discipline passes bytes untouched (no CR to LF translation, no echo), and the simulator
keeps its own slave fd open: otherwise the pty hangs up (EIO on the master) every time
the agent closes the port to reopen it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tty
from collections.abc import Callable

log = logging.getLogger(__name__)

READ_CHUNK = 4096
# Bytes waiting for a reader on the slave side beyond this are dropped (and logged):
# a real device with nobody listening loses them too, and the simulator must not grow.
MAX_PENDING = 64 * 1024


class PortClosed(Exception):
    """Writing to a port that is closed (its device is unplugged or stopped)."""


class PtyPort:
    """Opened on creation; `close` is idempotent. Callbacks run on the event loop."""

    def __init__(self, name: str, on_data: Callable[[bytes], None]) -> None:
        self._name = name
        self._on_data = on_data
        self._loop = asyncio.get_running_loop()
        self._master, self._slave = os.openpty()
        try:
            tty.setraw(self._slave)
            os.set_blocking(self._master, False)
            self.path = os.ttyname(self._slave)
            self._loop.add_reader(self._master, self._read)
        except BaseException:
            os.close(self._master)
            os.close(self._slave)
            raise
        self._pending = bytearray()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def _read(self) -> None:
        try:
            data = os.read(self._master, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            # Only happens when no slave fd is open, which our own fd prevents.
            log.warning("%s: read from %s failed: %s", self._name, self.path, exc)
            return
        if data:
            self._on_data(data)

    def write(self, data: bytes) -> None:
        if self._closed:
            raise PortClosed(f"{self._name}: port is closed")
        if self._pending:
            self._queue(data)
            return
        try:
            sent = os.write(self._master, data)
        except BlockingIOError:
            sent = 0
        if sent < len(data):
            self._queue(data[sent:])
            self._loop.add_writer(self._master, self._flush)

    def _queue(self, data: bytes) -> None:
        if len(self._pending) + len(data) > MAX_PENDING:
            log.warning(
                "%s: nobody is reading %s; dropped %d bytes", self._name, self.path, len(data)
            )
            return
        self._pending += data

    def _flush(self) -> None:
        try:
            sent = os.write(self._master, self._pending)
        except BlockingIOError:
            return
        del self._pending[:sent]
        if not self._pending:
            self._loop.remove_writer(self._master)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._master)
        self._loop.remove_writer(self._master)
        self._pending.clear()
        # Master first: the agent's open slave fd then reads EIO, as on a USB unplug.
        os.close(self._master)
        os.close(self._slave)
