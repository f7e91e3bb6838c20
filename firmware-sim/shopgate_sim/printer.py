"""A receipt printer: ESC/POS over TCP (port 9100 on a real one) on loopback, or over a
serial line (`transport: serial`: a pseudo-terminal, as an RS232 or USB CDC printer).

What it receives goes through its own ESC/POS reader (escpos_stream.py) into a print
engine that works like the real thing:

- real-time status requests (DLE EOT 1-4) are answered at once and truthfully;
- everything else is printed in order, `line_ms` per line; with the paper out or the
  cover open the engine stops and keeps what it received, and goes on when the paper or
  the cover is back (as a real printer does: nothing is lost, nothing printed twice);
- GS r 1 is answered when the engine reaches it, i.e. after what came before is printed;
- a job is what was printed up to a cut;
- unplugging is a power cut: connections drop, unprinted data is lost, a job half printed
  stays as it is (`"cut": false`); it comes back on the same TCP port (a serial printer:
  on a new pseudo-terminal, as a USB adapter comes back as a new tty).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from shopgate_sim import printout
from shopgate_sim.api import StrictBody, find_device, int_in_path, json_error, read_body
from shopgate_sim.device import DeviceKind, DeviceSpec, DeviceUnplugged, SimDevice
from shopgate_sim.escpos_stream import (
    Action,
    Barcode,
    Cut,
    EscPosReader,
    Image,
    NewLine,
    QrCode,
    StatusRequest,
    Text,
)
from shopgate_sim.pty_port import PortClosed, PtyPort

log = logging.getLogger(__name__)

MAX_JOBS = 1000  # kept for GET /printers/{id}/jobs; older ones are dropped


class PrinterSpec(DeviceSpec):
    kind: Literal["printer"]
    # The TCP port it listens on at 127.0.0.1; 0: any free port (see devices.json).
    port: int = Field(0, ge=0, le=65535)
    transport: Literal["tcp", "serial"] = "tcp"
    answers_gs_r: bool = True  # False: a model without GS r (it ignores the request)
    line_ms: int = Field(0, ge=0, le=10_000)  # time to print one line


@dataclass
class _Job:
    lines: list[dict[str, Any]] = field(default_factory=list)
    text_lines: list[str] = field(default_factory=list)
    line: list[Text] = field(default_factory=list)
    qr: list[dict[str, Any]] = field(default_factory=list)
    barcodes: list[dict[str, Any]] = field(default_factory=list)
    images: int = 0

    @property
    def empty(self) -> bool:
        return not (self.text_lines or self.line or self.qr or self.barcodes or self.images)

    def end_line(self) -> None:
        text = "".join(t.text for t in self.line)
        self.text_lines.append(text)
        if text.strip():
            first = self.line[0].style
            self.lines.append(
                {
                    "text": text,
                    "width": max(t.style.width for t in self.line),
                    "height": max(t.style.height for t in self.line),
                    "bold": any(t.style.bold for t in self.line),
                    "align": first.align,
                }
            )
        self.line = []

    def finish(self, *, cut: bool, partial: bool = False) -> dict[str, Any]:
        if self.line:
            self.end_line()
        return {
            "text": "\n".join(self.text_lines),
            "lines": self.lines,
            "qr": [q["data"] for q in self.qr],
            "qr_codes": self.qr,
            "barcodes": self.barcodes,
            "images": self.images,
            "cut": cut,
            "partial_cut": partial,
            "interrupted": not cut,
            "t": time.monotonic(),
        }


class _SerialLine:
    """The printer's end of a serial cable: like a TCP connection, one per plug-in."""

    def __init__(self, printer: Printer) -> None:
        self.printer = printer
        self.reader = EscPosReader(self._realtime)
        self.port = PtyPort(printer.id, self._received)

    def _received(self, data: bytes) -> None:
        self.printer.received_bytes += len(data)
        self.printer.enqueue(self, self.reader.feed(data))

    def send(self, data: bytes) -> None:
        with contextlib.suppress(PortClosed):
            self.port.write(data)

    def _realtime(self, n: int) -> None:
        reply = self.printer.status_byte(n)
        if reply is not None:
            self.send(bytes([reply]))


class _Connection(asyncio.Protocol):
    def __init__(self, printer: Printer) -> None:
        self.printer = printer
        self.transport: asyncio.Transport | None = None
        self.reader = EscPosReader(self._realtime)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.printer.connections.add(self)
        log.info("%s: connection from %s", self.printer.id, transport.get_extra_info("peername"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.printer.connections.discard(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.printer.received_bytes += len(data)
        self.printer.enqueue(self, self.reader.feed(data))

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _realtime(self, n: int) -> None:
        reply = self.printer.status_byte(n)
        if reply is not None:
            self.send(bytes([reply]))


class Printer(SimDevice):
    kind = "printer"

    def __init__(self, spec: PrinterSpec) -> None:
        super().__init__(spec.id)
        self._want_port = spec.port
        self.transport = spec.transport
        self.answers_gs_r = spec.answers_gs_r
        self._serial: _SerialLine | None = None
        self._port: int | None = None
        self._bound_port = 0  # kept across an unplug: a network printer keeps its address
        self.line_ms = spec.line_ms
        self.paper_out = False
        self.paper_near_end = False
        self.cover_open = False
        self.jobs: list[dict[str, Any]] = []
        self.received_bytes = 0
        self.connections: set[_Connection] = set()
        self._server: asyncio.Server | None = None
        self._queue: deque[tuple[_Connection | _SerialLine, Action]] = deque()
        self._job = _Job()
        self._wake = asyncio.Event()
        self._engine: asyncio.Task[None] | None = None
        self._replug: asyncio.Task[None] | None = None

    @property
    def path(self) -> str | None:
        return self._serial.port.path if self._serial is not None else None

    @property
    def tcp_port(self) -> int | None:
        return self._port

    @property
    def printing(self) -> bool:
        return bool(self._queue) or not self._job.empty

    def describe_state(self) -> dict[str, Any]:
        return {
            "plugged": self._server is not None or self._serial is not None,
            "transport": self.transport,
            "port": self._port,
            "path": self.path,
            "paper_out": self.paper_out,
            "paper_near_end": self.paper_near_end,
            "cover_open": self.cover_open,
            "line_ms": self.line_ms,
            "connections": len(self.connections),
            "queued_actions": len(self._queue),
            "printing": self.printing,
            "received_bytes": self.received_bytes,
            "jobs": len(self.jobs),
        }

    # --- status bytes -----------------------------------------------------------------

    @property
    def stopped(self) -> bool:
        return self.paper_out or self.cover_open

    def status_byte(self, n: int) -> int | None:
        """The reply to DLE EOT n (bits 1 and 4 always set), None for an unknown n."""
        if n == 1:
            return 0x12 | (0x08 if self.stopped else 0)
        if n == 2:
            return 0x12 | (0x04 if self.cover_open else 0) | (0x20 if self.paper_out else 0)
        if n == 3:
            return 0x12
        if n == 4:
            return (
                0x12 | (0x0C if self.paper_near_end or self.paper_out else 0)
                | (0x60 if self.paper_out else 0)
            )  # fmt: skip
        log.info("%s: DLE EOT %d is not a status we know; not answered", self.id, n)
        return None

    def gs_r_byte(self, n: int) -> int:
        """The reply to GS r n (bits 4 and 7 always clear, unlike a DLE EOT reply)."""
        if n in (1, 49):  # paper sensor status
            near = 0x03 if self.paper_near_end or self.paper_out else 0
            return near | (0x0C if self.paper_out else 0)
        return 0x00  # n = 2: drawer kick-out connector, closed

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        await self._listen()
        self._engine = asyncio.create_task(self._run_engine(), name=f"engine {self.id}")

    async def _listen(self) -> None:
        if self.transport == "serial":
            self._serial = _SerialLine(self)
            log.info("%s: ESC/POS on %s", self.id, self._serial.port.path)
            self.port_changed(self)
            return
        loop = asyncio.get_running_loop()
        port = self._bound_port or self._want_port
        self._server = await loop.create_server(
            lambda: _Connection(self), "127.0.0.1", port, reuse_address=True
        )
        self._port = self._bound_port = self._server.sockets[0].getsockname()[1]
        log.info("%s: ESC/POS on 127.0.0.1:%d", self.id, self._port)
        self.port_changed(self)

    async def _power_off(self) -> None:
        server, self._server = self._server, None
        self._port = None
        line, self._serial = self._serial, None
        if line is not None:
            line.port.close()
        if server is not None:
            server.close()
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        self.connections.clear()
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
        self._queue.clear()  # the receive buffer is RAM: gone with the power
        if not self._job.empty:
            self._keep(self._job.finish(cut=False))
        self._job = _Job()

    async def stop(self) -> None:
        for task in (self._replug, self._engine):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._replug = self._engine = None
        await self._power_off()

    async def unplug(self, seconds: float) -> None:
        if self._server is None and self._serial is None:
            raise DeviceUnplugged(f"{self.id} is already unplugged")
        await self._power_off()
        log.info("%s: unplugged for %.3g s", self.id, seconds)
        self.port_changed(self)
        self._replug = asyncio.create_task(self._replug_after(seconds), name=f"replug {self.id}")

    async def _replug_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._replug = None
        await self._listen()

    # --- control ----------------------------------------------------------------------

    def set_paper(self, out: bool, near_end: bool | None) -> None:
        self.paper_out = out
        if near_end is not None:
            self.paper_near_end = near_end
        log.info("%s: paper %s", self.id, "out" if out else "in")
        self._wake.set()

    def set_cover(self, open_: bool) -> None:
        self.cover_open = open_
        log.info("%s: cover %s", self.id, "open" if open_ else "closed")
        self._wake.set()

    # --- the print engine -------------------------------------------------------------

    def enqueue(self, conn: _Connection | _SerialLine, actions: list[Action]) -> None:
        for action in actions:
            self._queue.append((conn, action))
        if actions:
            self._wake.set()

    async def _run_engine(self) -> None:
        while True:
            if not self._queue or self.stopped:
                self._wake.clear()
                await self._wake.wait()
                continue
            conn, action = self._queue.popleft()
            lines = self._do(conn, action)
            if lines and self.line_ms:
                await asyncio.sleep(lines * self.line_ms / 1000)

    def _do(self, conn: _Connection | _SerialLine, action: Action) -> int:
        """Carry out one action; returns how many lines of paper it took."""
        job = self._job
        match action:
            case Text():
                job.line.append(action)
                return 0
            case NewLine(count):
                job.end_line()
                for _ in range(count - 1):
                    job.end_line()
                return count
            case QrCode(data, model, module, level):
                if job.line:
                    job.end_line()
                job.qr.append(
                    {
                        "data": data.decode("utf-8", errors="replace"),
                        "hex": data.hex(),
                        "model": model,
                        "module": module,
                        "level": level,
                    }
                )
                return 4
            case Barcode(kind, digits, height, module, hri):
                if job.line:
                    job.end_line()
                job.barcodes.append(
                    {"type": kind, "data": digits, "height": height, "module": module, "hri": hri}
                )
                return 3
            case Image():
                job.images += 1
                return 2
            case Cut(partial):
                self._keep(job.finish(cut=True, partial=partial))
                self._job = _Job()
                return 1
            case StatusRequest(n):
                if self.answers_gs_r:
                    conn.send(bytes([self.gs_r_byte(n)]))
                return 0
        return 0

    def _keep(self, job: dict[str, Any]) -> None:
        self.jobs.append(job)
        del self.jobs[:-MAX_JOBS]
        log.info(
            "%s: printed job %d (%d lines, %d QR, %d barcodes%s)",
            self.id,
            len(self.jobs),
            len(job["lines"]),
            len(job["qr"]),
            len(job["barcodes"]),
            "" if job["cut"] else ", not cut: interrupted",
        )


# --- control API --------------------------------------------------------------------


class PaperBody(StrictBody):
    out: bool
    near_end: bool | None = None


class CoverBody(StrictBody):
    open: bool


class SpeedBody(StrictBody):
    line_ms: int = Field(ge=0, le=10_000)


def routes(devices: Mapping[str, SimDevice]) -> list[web.RouteDef]:
    def printer(request: web.Request) -> Printer:
        return find_device(devices, request.match_info["id"], Printer, "printer")

    async def get_printer(request: web.Request) -> web.Response:
        return web.json_response(printer(request).describe_state())

    async def get_jobs(request: web.Request) -> web.Response:
        return web.json_response(printer(request).jobs)

    async def post_paper(request: web.Request) -> web.Response:
        p = printer(request)
        body = await read_body(request, PaperBody)
        p.set_paper(body.out, body.near_end)
        return web.json_response(p.describe_state())

    async def post_cover(request: web.Request) -> web.Response:
        p = printer(request)
        body = await read_body(request, CoverBody)
        p.set_cover(body.open)
        return web.json_response(p.describe_state())

    async def post_speed(request: web.Request) -> web.Response:
        p = printer(request)
        body = await read_body(request, SpeedBody)
        p.line_ms = body.line_ms
        return web.json_response(p.describe_state())

    def code(request: web.Request, what: str) -> dict[str, Any]:
        jobs = printer(request).jobs
        n, k = int_in_path(request, "n"), int_in_path(request, "k")
        if not 0 <= n < len(jobs):
            raise json_error(web.HTTPNotFound, f"no job {n} (jobs: {len(jobs)})")
        found = jobs[n][what]
        if not 0 <= k < len(found):
            raise json_error(web.HTTPNotFound, f"job {n} has no {what} {k}")
        return found[k]

    async def get_qr_png(request: web.Request) -> web.Response:
        qr = code(request, "qr_codes")
        png = printout.qr_png(bytes.fromhex(qr["hex"]), module=qr["module"], level=qr["level"])
        return web.Response(body=png, content_type="image/png")

    async def get_barcode_png(request: web.Request) -> web.Response:
        bc = code(request, "barcodes")
        if bc["type"] != "EAN13":
            raise json_error(web.HTTPNotFound, f"only EAN-13 is drawn, this is {bc['type']}")
        png = printout.ean13_png(bc["data"], module=bc["module"], height=bc["height"])
        return web.Response(body=png, content_type="image/png")

    return [
        web.get("/printers/{id}", get_printer),
        web.get("/printers/{id}/jobs", get_jobs),
        web.post("/printers/{id}/paper", post_paper),
        web.post("/printers/{id}/cover", post_cover),
        web.post("/printers/{id}/speed", post_speed),
        web.get("/printers/{id}/jobs/{n}/qr/{k}", get_qr_png),
        web.get("/printers/{id}/jobs/{n}/barcodes/{k}", get_barcode_png),
    ]


KIND = DeviceKind(spec=PrinterSpec, build=Printer, routes=routes)
