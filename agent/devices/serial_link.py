"""A serial port that keeps itself open: the transport under every serial driver.

The link opens its port path (often a udev symlink such as /dev/serial/by-id/..., or
the simulator's symlink to a pty), hands every received chunk to its owner, and when
the port fails or disappears (a read error, EIO after an unplug, a closed pty) reopens
it with capped exponential backoff and jitter. The path is opened anew each time, so a
replugged device that shows up behind the same symlink as a different /dev/pts/N or
/dev/ttyUSBN is picked up without a restart.

The owner learns about the port going up and down through two callbacks, each called
once per transition (the first open attempt always reports one of them). Owners turn
that into DeviceOnline / DeviceOffline with `Presence`, combined with whatever else
decides whether their device works (a lock bus also needs its boards to answer).

Reads and writes happen on the event loop thread through pyserial-asyncio-fast, whose
writes go straight to the non-blocking file descriptor (no extra loop iteration), so a
frame written from a callback is on the wire in microseconds. Opening and closing the
port run in the default executor: both can block on a misbehaving USB adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

import serial
import serial_asyncio_fast

from agent.devices.base import DeviceError
from runtime.backoff import Backoff

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 2.0


class _LinkProtocol(asyncio.Protocol):
    def __init__(self, on_data: Callable[[bytes], None], lost: asyncio.Future[str]) -> None:
        self._on_data = on_data
        self._lost = lost

    def data_received(self, data: bytes) -> None:
        self._on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._lost.done():
            self._lost.set_result(str(exc) if exc else "port closed")


class SerialLink:
    """One serial port, reopened whenever it goes away, until `stop()`.

    `on_data(chunk)` gets every received chunk on the loop thread. `on_up()` and
    `on_down(reason)` report transitions of the port itself. `write()` sends bytes now
    or raises DeviceError when the port is not open.
    """

    def __init__(
        self,
        name: str,
        port: str | os.PathLike[str],
        baudrate: int,
        *,
        on_data: Callable[[bytes], None],
        on_up: Callable[[], None],
        on_down: Callable[[str], None],
        backoff: Backoff | None = None,
    ) -> None:
        self.name = name
        self.port = Path(port)
        self.baudrate = baudrate
        self._on_data = on_data
        self._on_up = on_up
        self._on_down = on_down
        self._backoff = backoff or Backoff()
        self._transport: serial_asyncio_fast.SerialTransport | None = None
        self._lost: asyncio.Future[str] | None = None
        self._task: asyncio.Task[None] | None = None
        self._is_up: bool | None = None
        self._down_reason = "not started"

    @property
    def connected(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def write(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            raise DeviceError(
                f"{self.name}: serial port {self.port} is not open ({self._down_reason})"
            )
        transport.write(data)

    async def start(self) -> None:
        """Start keeping the port open; returns once the first open attempt is over
        (either way: a missing port is reported through `on_down` and retried)."""
        if self._task is not None:
            return
        first_attempt = asyncio.Event()
        self._task = asyncio.create_task(self._keep_open(first_attempt), name=f"serial {self.name}")
        await first_attempt.wait()

    async def stop(self) -> None:
        """Close the port and stop reopening it. Safe to call twice, or before start.
        A deliberate stop is not reported through `on_down`."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close_transport()

    async def _keep_open(self, first_attempt: asyncio.Event) -> None:
        attempt = 0
        while True:
            try:
                await self._open()
            except (OSError, serial.SerialException) as exc:
                self._report_down(f"cannot open {self._describe_port()}: {exc}")
            except Exception as exc:
                # Not a missing device but something odd (termios.error from a port that
                # is not a tty...). Keep the device supervised: log it fully (once per
                # outage) and retry.
                if self._is_up is not False:
                    log.exception("%s: unexpected error opening %s", self.name, self.port)
                self._report_down(f"cannot open {self._describe_port()}: {exc!r}")
            else:
                attempt = 0
                self._report_up()
                first_attempt.set()
                assert self._lost is not None
                reason = await asyncio.shield(self._lost)
                self._transport = None
                self._report_down(f"lost {self.port}: {reason}")
            first_attempt.set()
            delay = self._backoff.delay(attempt)
            attempt += 1
            log.debug("%s: reopening %s in %.2fs", self.name, self.port, delay)
            await asyncio.sleep(delay)

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        opening = loop.run_in_executor(None, self._open_blocking)
        try:
            ser = await asyncio.shield(opening)
        except asyncio.CancelledError:
            # The open runs on in its thread; whatever it opens must not leak.
            opening.add_done_callback(_close_opened_port)
            raise
        try:
            lost: asyncio.Future[str] = loop.create_future()
            protocol = _LinkProtocol(self._on_data, lost)
            transport, _ = await serial_asyncio_fast.connection_for_serial(
                loop, lambda: protocol, ser
            )
        except BaseException:
            ser.close()
            raise
        self._transport, self._lost = transport, lost
        log.info("%s: opened %s", self.name, self._describe_port())

    def _open_blocking(self) -> serial.Serial:
        # exclusive=True takes a flock: a second agent (or a stray minicom) on the same
        # port fails loudly here instead of both reading half the bytes.
        return serial.Serial(str(self.port), self.baudrate, timeout=0, exclusive=True)

    async def _close_transport(self) -> None:
        transport, self._transport = self._transport, None
        lost, self._lost = self._lost, None
        if transport is not None and not transport.is_closing():
            # abort, not close: close() drains the output first, which can hang on a
            # wedged adapter, and nothing queued matters once we stop.
            transport.abort()
        if lost is not None:
            # connection_lost fires only after the port is closed in the executor.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(lost), CLOSE_TIMEOUT_S)

    def _describe_port(self) -> str:
        real = os.path.realpath(self.port)
        return str(self.port) if real == str(self.port) else f"{self.port} -> {real}"

    def _report_up(self) -> None:
        if self._is_up is not True:
            self._is_up = True
            self._down_reason = ""
            self._on_up()

    def _report_down(self, reason: str) -> None:
        self._down_reason = reason
        if self._is_up is not False:
            self._is_up = False
            self._on_down(reason)
        else:
            log.debug("%s: %s", self.name, reason)


def _close_opened_port(opening: asyncio.Future[serial.Serial]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()
