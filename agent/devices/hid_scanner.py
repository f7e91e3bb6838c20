"""USB HID (keyboard-wedge) scanners read through evdev (kind `hid_scanner`).

The scanner is a keyboard to Linux. The driver opens its input device node (best the
stable /dev/input/by-id/usb-...-event-kbd link), grabs it exclusively (EVIOCGRAB) so
the scans do not also type into a console or a login prompt on the Pi, and decodes
key events into lines with the configured layout (protocols/keyboard_wedge.py). Each
line becomes a ScanRead, exactly as from a serial scanner, so doors and self-checkout
take either kind.

Unplugging makes reads fail (ENODEV) and the node disappear; the driver reports the
device offline, forgets the partial line, and reopens the path with capped backoff
until the scanner is back (the by-id link then points at a new eventN). Opening and
grabbing run in a thread (both are ioctls on a USB device that may hang); reading is
a non-blocking reader on the loop, a few dozen bytes per key.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from time import perf_counter_ns
from typing import Protocol

from agent.config.schema import HidScannerDevice
from agent.devices.base import Device, EventSink, ScanRead
from agent.devices.presence import Presence
from agent.devices.protocols.keyboard_wedge import (
    LAYOUTS,
    WedgeDecoder,
    WedgeLine,
    WedgeLineTooLong,
)
from runtime.backoff import Backoff

log = logging.getLogger(__name__)


class KeyEvent(Protocol):
    type: int
    code: int
    value: int


class EventSource(Protocol):
    """What the driver needs of an open input device (evdev.InputDevice has it)."""

    def fileno(self) -> int: ...

    def read(self) -> Iterable[KeyEvent]: ...

    def close(self) -> None: ...


Opener = Callable[[Path, bool], EventSource]


def open_evdev(path: Path, grab: bool) -> EventSource:
    """Open (and grab) the input device at `path`; OSError with the reason if not."""
    import evdev  # only here: an agent without HID scanners does not need it

    try:
        device = evdev.InputDevice(str(path))
    except OSError as e:
        if e.errno == errno.ENOTTY:
            raise OSError(e.errno, f"{path} is not an input event device") from e
        raise
    try:
        if grab:
            try:
                device.grab()
            except OSError as e:
                if e.errno == errno.EBUSY:
                    raise OSError(
                        e.errno, "another program holds it grabbed (a second agent, evtest -g?)"
                    ) from e
                raise
        # Without the key capability this is a mouse, a power button... not a scanner.
        if 1 not in device.capabilities():
            raise OSError(errno.EINVAL, f"{path} ({device.name}) sends no key events")
    except BaseException:
        device.close()
        raise
    log.info("opened %s: %s", path, device.name)
    return device


class HidScanner(Device):
    def __init__(
        self,
        cfg: HidScannerDevice,
        sink: EventSink,
        *,
        backoff: Backoff | None = None,
        opener: Opener = open_evdev,
    ) -> None:
        self.id = cfg.id
        self.kind = cfg.kind
        self.path = Path(cfg.path)
        self.grab = cfg.grab
        self._sink = sink
        self._presence = Presence(cfg.id, sink)
        self._decoder = WedgeDecoder(LAYOUTS[cfg.layout])
        self._backoff = backoff or Backoff()
        self._open = opener
        self._source: EventSource | None = None
        self._lost: asyncio.Future[str] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def online(self) -> bool:
        return self._presence.online

    @property
    def unknown_keys(self) -> int:
        """Key presses the layout did not know, since start (a layout mismatch shows here)."""
        return self._decoder.unknown_total

    async def start(self) -> None:
        """Returns once the first open attempt is over, either way."""
        if self._task is not None:
            return
        first = asyncio.Event()
        self._task = asyncio.create_task(self._keep_open(first), name=f"hid {self.id}")
        await first.wait()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._close()

    async def _keep_open(self, first: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            try:
                source = await asyncio.to_thread(self._open, self.path, self.grab)
            except OSError as e:
                self._presence.down(f"cannot open {self._describe()}: {e.strerror or e}")
            else:
                attempt = 0
                self._source = source
                self._lost = loop.create_future()
                loop.add_reader(source.fileno(), self._readable)
                self._presence.up()
                first.set()
                reason = await self._lost
                self._close()
                self._presence.down(f"lost {self.path}: {reason}")
            first.set()
            delay = self._backoff.delay(attempt)
            attempt += 1
            await asyncio.sleep(delay)

    def _readable(self) -> None:
        source = self._source
        if source is None:
            return
        now = perf_counter_ns()
        try:
            events = list(source.read())
        except BlockingIOError:
            return
        except OSError as e:
            self._lose(e.strerror or str(e))
            return
        if not events:
            self._lose("end of file")  # the node was closed under us
            return
        for ev in events:
            for item in self._decoder.feed(ev.type, ev.code, ev.value):
                self._emit(item, now)

    def _emit(self, item: WedgeLine | WedgeLineTooLong, now: int) -> None:
        match item:
            case WedgeLine(text, unknown):
                if unknown:
                    # Length and count only: a scanned line is a pass or a code.
                    log.warning(
                        "%s: %d key(s) in a %d-character scan are not on the %s layout; "
                        "set the scanner to the same keyboard layout (US for China)",
                        self.id,
                        unknown,
                        len(text),
                        self._decoder.layout.name,
                    )
                self._sink(ScanRead(self.id, text, now))
            case WedgeLineTooLong(length):
                log.warning(
                    "%s: dropped a %d-character scan (at most %d); is the scanner set to "
                    "end each scan with Enter?",
                    self.id,
                    length,
                    self._decoder.max_len,
                )

    def _lose(self, reason: str) -> None:
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(reason)
        self._drop_reader()

    def _drop_reader(self) -> None:
        source = self._source
        if source is not None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(source.fileno())

    def _close(self) -> None:
        self._drop_reader()
        source, self._source = self._source, None
        self._decoder.reset()
        if source is not None:
            # Closing releases the grab too; after an unplug both may fail, harmlessly.
            with contextlib.suppress(OSError):
                source.close()

    def _describe(self) -> str:
        real = os.path.realpath(self.path)
        return str(self.path) if real == str(self.path) else f"{self.path} -> {real}"
