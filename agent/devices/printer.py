"""ESC/POS receipt and label printers (kind `printer`): network, serial or USB.

python-escpos owns the connection (escpos.printer.Network / Serial / Usb); the bytes
come from our codec (agent/devices/protocols/escpos.py). Its calls block, so each runs
in a worker thread (asyncio.to_thread), one at a time behind a lock.

While idle the driver reads the printer's status (DLE EOT 1, 2, 4; 3 when 2 reports an
error) every `status_poll_seconds`: answering at all makes it online (DeviceOnline /
DeviceOffline), and the replies say whether it can print (paper, cover, errors).

`print_job(data)` prints one job and returns only once the printer confirmed it:

1. status first: a printer without paper or with its cover open gets nothing (it would
   keep the bytes and print them later, and a retry would print them twice);
2. the job's bytes, then GS r 1, which the printer answers only when it reaches it, i.e.
   after it has printed (and cut) everything before it (`confirm: received`, for models
   without GS r: the job's bytes, then a status read, and the job is done);
3. while waiting for that answer the status is read again every poll interval; paper
   running out mid-job is reported through `on_wait` and the wait goes on (the printer
   finishes from its buffer once the paper is back). A lost connection, or no answer
   within `print_timeout_seconds` from a printer that says it is fine, raises: the job
   was not confirmed and is sent again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.config.schema import NetworkPrinter, PrinterDevice, SerialPrinter, UsbPrinter
from agent.devices.base import Device, DeviceError, EventSink
from agent.devices.presence import Presence
from agent.devices.protocols.escpos import (
    ASB_OFF,
    CONFIRM_REQUEST,
    PrinterStatus,
    StatusReplyError,
    combine_status,
    is_status_reply,
    parse_status,
    status_request,
)
from runtime.backoff import Backoff

log = logging.getLogger(__name__)

READ_SLICE_S = 0.2  # how long one read waits while a job prints (stop() is seen this fast)


class PrinterNotReady(DeviceError):
    """The printer answers but cannot print now; nothing was sent."""

    def __init__(self, device: str, status: PrinterStatus) -> None:
        super().__init__(f"{device}: cannot print: {status.problem}")
        self.status = status


class PrinterOffline(DeviceError):
    """The printer could not be reached or did not answer; nothing was sent."""


class Unconfirmed(DeviceError):
    """The job was sent and the printer answers, but it never confirmed printing it."""


class _Link:
    """One open connection through python-escpos, used from one worker thread at a time."""

    def __init__(self, cfg: PrinterDevice) -> None:
        self.cfg = cfg
        self.conn = cfg.connection
        self.printer: Any = None
        self._pending = bytearray()

    def open(self) -> None:
        from escpos import printer as escpos_printer  # imported here: it loads its profiles

        timeout = self.cfg.timeout_seconds
        c = self.conn
        if isinstance(c, NetworkPrinter):
            host, port = (c.host, c.port) if c.host else _read_address(c.address_file)
            p: Any = escpos_printer.Network(host=host, port=port, timeout=timeout)
        elif isinstance(c, SerialPrinter):
            p = escpos_printer.Serial(devfile=str(c.port), baudrate=c.baudrate, timeout=timeout)
        else:
            assert isinstance(c, UsbPrinter)
            p = escpos_printer.Usb(
                idVendor=c.vendor_id,
                idProduct=c.product_id,
                timeout=int(timeout * 1000),
                in_ep=c.in_ep,
                out_ep=c.out_ep,
            )
        try:
            p.open()
        except Exception as exc:
            # python-escpos wraps OSErrors in DeviceNotFoundError; either way: not there.
            with contextlib.suppress(Exception):
                p.close()
            raise DeviceError(f"cannot connect: {' '.join(str(exc).split())}") from exc
        self.printer = p
        self.write(ASB_OFF)

    def close(self) -> None:
        p, self.printer = self.printer, None
        self._pending.clear()
        if p is not None:
            with contextlib.suppress(Exception):
                p.close()

    def write(self, data: bytes) -> None:
        try:
            self.printer._raw(data)
        except Exception as exc:
            raise DeviceError(f"write failed: {exc}") from exc

    def read_byte(self, timeout: float) -> int | None:
        """One reply byte, or None when none came within `timeout`."""
        if not self._pending:
            self._set_timeout(timeout)
            try:
                data = self.printer._read()
            except TimeoutError:
                return None
            except Exception as exc:
                if type(exc).__name__ == "USBTimeoutError":
                    return None
                raise DeviceError(f"read failed: {exc}") from exc
            if not data:
                if isinstance(self.conn, NetworkPrinter):
                    raise DeviceError("the printer closed the connection")
                return None  # serial: a read that timed out
            self._pending += bytes(data)
        return self._pending.pop(0)

    def _set_timeout(self, timeout: float) -> None:
        dev = self.printer.device
        if isinstance(self.conn, NetworkPrinter):
            dev.settimeout(timeout)
        elif isinstance(self.conn, SerialPrinter):
            dev.timeout = timeout


def _read_address(path: Path | None) -> tuple[str, int]:
    assert path is not None
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise DeviceError(f"cannot read the printer's address from {path}: {exc}") from exc
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise DeviceError(f"{path} should hold HOST:PORT, not {text[:60]!r}")
    return host, int(port)


class Printer(Device):
    def __init__(
        self, cfg: PrinterDevice, sink: EventSink, *, backoff: Backoff | None = None
    ) -> None:
        self.id = cfg.id
        self.cfg = cfg
        self._presence = Presence(cfg.id, sink)
        self._backoff = backoff or Backoff(initial_s=0.5, cap_s=10.0)
        self._link = _Link(cfg)
        self._io = asyncio.Lock()  # one conversation with the printer at a time
        self._stopping = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._poke = asyncio.Event()
        self.status: PrinterStatus | None = None  # last status read; None while unknown
        # Called on the loop with every status read that differs from the last one.
        self.status_listeners: list[Callable[[PrinterStatus | None], None]] = []

    @property
    def online(self) -> bool:
        return self._presence.online

    @property
    def offline_reason(self) -> str:
        return self._presence.reason

    async def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            first = asyncio.Event()
            self._task = asyncio.create_task(self._supervise(first), name=f"printer {self.id}")
            await first.wait()

    async def stop(self) -> None:
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        async with self._io:
            await asyncio.to_thread(self._link.close)

    def poke(self) -> None:
        """Read the status now rather than at the next poll."""
        self._poke.set()

    # --- keeping in touch ---------------------------------------------------------------

    async def _supervise(self, first: asyncio.Event) -> None:
        attempt = 0
        while True:
            try:
                async with self._io:
                    await self._ensure_open()
                    status = await asyncio.to_thread(self._read_status)
            except DeviceError as exc:
                await self._lost(str(exc))
                first.set()
                await self._sleep(self._backoff.delay(attempt))
                attempt += 1
                continue
            attempt = 0
            self._presence.up()
            self._set_status(status)
            first.set()
            await self._sleep(self.cfg.status_poll_seconds)

    async def _sleep(self, seconds: float) -> None:
        self._poke.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._poke.wait(), seconds)

    async def _ensure_open(self) -> None:
        if self._link.printer is None:
            await asyncio.to_thread(self._link.open)
            log.info("%s: connected", self.id)

    async def _lost(self, reason: str) -> None:
        await asyncio.to_thread(self._link.close)
        self._presence.down(reason)
        self._set_status(None)

    def _set_status(self, status: PrinterStatus | None) -> None:
        if status == self.status:
            return
        self.status = status
        if status is not None and not status.ready:
            log.warning("%s: cannot print: %s", self.id, status.problem)
        for listener in list(self.status_listeners):
            listener(status)

    # --- in the worker thread -----------------------------------------------------------

    def _ask(self, n: int, confirmed: list[bool]) -> int:
        """DLE EOT n and its reply. A GS r reply read on the way is a job confirmation."""
        self._link.write(status_request(n))
        deadline = time.monotonic() + self.cfg.timeout_seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeviceError(f"no reply to DLE EOT {n} in {self.cfg.timeout_seconds:g} s")
            byte = self._link.read_byte(min(left, READ_SLICE_S))
            if byte is None:
                if self._stopping.is_set():
                    raise DeviceError("stopping")
                continue
            if is_status_reply(byte):
                return byte
            confirmed[0] = True

    def _read_status(self, confirmed: list[bool] | None = None) -> PrinterStatus:
        confirmed = confirmed if confirmed is not None else [False]
        try:
            replies = {n: self._ask(n, confirmed) for n in (1, 2, 4)}
            if parse_status(2, replies[2])["error"]:
                replies[3] = self._ask(3, confirmed)
            return combine_status(replies)
        except StatusReplyError as exc:
            raise DeviceError(f"garbled status reply: {exc}") from exc

    def _print_blocking(
        self, data: bytes, on_wait: Callable[[PrinterStatus], None]
    ) -> PrinterStatus:
        try:
            status = self._read_status()
        except DeviceError as exc:
            raise PrinterOffline(str(exc)) from exc
        if not status.ready:
            raise PrinterNotReady(self.id, status)
        if self.cfg.confirm == "received":
            # Status requests are answered in real time, but only after the bytes before
            # them arrived: a reply means the printer holds the whole job.
            self._link.write(data)
            return self._read_status()
        self._link.write(data + CONFIRM_REQUEST)
        confirmed = [False]
        patience = self.cfg.print_timeout_seconds
        deadline = time.monotonic() + patience
        next_poll = time.monotonic() + self.cfg.status_poll_seconds
        while not confirmed[0]:
            if self._stopping.is_set():
                raise DeviceError("stopped before the printer confirmed the job")
            byte = self._link.read_byte(READ_SLICE_S)
            if byte is not None and not is_status_reply(byte):
                break
            now = time.monotonic()
            if now >= next_poll:
                next_poll = now + self.cfg.status_poll_seconds
                status = self._read_status(confirmed)
                if not status.ready:
                    on_wait(status)
                    deadline = now + patience  # waiting for paper is not printing slowly
            if now >= deadline and not confirmed[0]:
                raise Unconfirmed(
                    f"the printer did not confirm the job within {patience:g} s, though it "
                    "answers status requests; if this model has no GS r (see its command "
                    "list), set `confirm: received`"
                )
        return self._read_status()

    # --- printing -----------------------------------------------------------------------

    async def print_job(
        self, data: bytes, *, on_wait: Callable[[PrinterStatus], None] | None = None
    ) -> PrinterStatus:
        """Print `data` (one whole job, ending in its cut); returns the status after the
        printer confirmed it. Raises PrinterNotReady or PrinterOffline (nothing sent), or
        DeviceError (sent, maybe printed, not confirmed)."""
        loop = asyncio.get_running_loop()

        def waiting(status: PrinterStatus) -> None:
            loop.call_soon_threadsafe(self._set_status, status)
            if on_wait is not None:
                loop.call_soon_threadsafe(on_wait, status)

        async with self._io:
            try:
                try:
                    await self._ensure_open()
                except DeviceError as exc:
                    raise PrinterOffline(str(exc)) from exc
                status = await asyncio.to_thread(self._print_blocking, data, waiting)
            except PrinterNotReady as exc:
                self._presence.up()
                self._set_status(exc.status)
                raise
            except Unconfirmed as exc:
                # Still there, so not offline; the connection is opened afresh all the
                # same, so that a late confirmation is not taken for the next job's.
                await asyncio.to_thread(self._link.close)
                raise Unconfirmed(f"{self.id}: {exc}") from exc
            except DeviceError as exc:
                await self._lost(str(exc))
                self.poke()
                kind = PrinterOffline if isinstance(exc, PrinterOffline) else DeviceError
                raise kind(f"{self.id}: {exc}") from exc
        self._presence.up()
        self._set_status(status)
        return status
