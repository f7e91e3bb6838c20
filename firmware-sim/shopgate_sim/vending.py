"""A vending machine controller (VMC) on RS232, 57600 8N1 (CONTRACTS section 6).

The VMC is master. Every `poll_ms` it sends one frame: its oldest unacknowledged
report (dispensing status, selection status) when it has one, else a POLL. The upper
computer must answer within `answer_ms`: an ACK, or after a POLL one command of its own.
A report that is not acknowledged in time goes out again, with the same packet number,
on the next cycles (`retries` times, then it is dropped). Commands are acknowledged at
once; one that repeats the previous packet number is a retransmission: acknowledged
again, not executed twice.

Every answer is timed on the wire (from the frame written to the pty to the answer
read back): `GET /vending/{id}` reports how many came late or never came.

Faults (`POST /vending/{id}/fault`) act on the next vend of a slot, as the board
reports them: `jam` (dispensing, then 03 jammed), `motor` (dispensing, then 04 motor
didn't stop), `no_motor` (06 at once), `empty` (the slot reads empty: stock 0 and a
selection status 02). A slot that jammed or whose motor did not stop reads `fault` in
its selection status until it vends again or is restocked (set inventory).

The packets are the simulator's own (vmc_wire.py), not the agent's codec.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shopgate_sim import vmc_wire as wire
from shopgate_sim.api import StrictBody, find_device, json_error, read_body
from shopgate_sim.device import DeviceKind, DeviceSpec, DeviceUnplugged, SimDevice
from shopgate_sim.serial_device import SerialDevice

log = logging.getLogger(__name__)

VEND_LOG_SIZE = 500
ANSWER_SAMPLES = 2000
MAX_REPORTS = 64
FAULTS = ("jam", "motor", "no_motor", "empty")
STATE_NAMES = {
    wire.Selection.NORMAL: "ok",
    wire.Selection.OUT_OF_STOCK: "empty",
    wire.Selection.PAUSED: "fault",
}


# ---- config -------------------------------------------------------------------------


class SlotSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    slot: int = Field(ge=1, le=wire.MAX_SELECTION)
    barcode: str = ""
    name: str = ""
    price: float = Field(default=0.0, ge=0, le=100000)
    stock: int = Field(default=0, ge=0, le=wire.MAX_INVENTORY)


class VendingSpec(DeviceSpec):
    kind: Literal["vending"]
    poll_ms: float = Field(default=200, ge=20, le=5000)
    answer_ms: float = Field(default=100, ge=5, le=5000)
    vend_ms: float = Field(default=600, ge=0, le=60000)
    retries: int = Field(default=5, ge=0, le=50)
    slots: list[SlotSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _slots_once(self) -> VendingSpec:
        seen: set[int] = set()
        for s in self.slots:
            if s.slot in seen:
                raise ValueError(f"slot {s.slot} is listed twice")
            seen.add(s.slot)
        if self.answer_ms >= self.poll_ms:
            raise ValueError("answer_ms must be shorter than poll_ms")
        return self


# ---- the machine (state, no I/O) ------------------------------------------------------


@dataclass(slots=True)
class Slot:
    barcode: str
    name: str
    price_fen: int
    stock: int
    fault: str | None = None  # injected, for the next vend
    faulted: bool = False  # jammed / motor fault seen, until it vends or is restocked
    vends: int = 0

    def state(self) -> wire.Selection:
        if self.faulted:
            return wire.Selection.PAUSED
        return wire.Selection.NORMAL if self.stock > 0 else wire.Selection.OUT_OF_STOCK

    def snapshot(self) -> dict[str, object]:
        return {
            "barcode": self.barcode,
            "name": self.name,
            "price": round(self.price_fen / 100, 2),
            "stock": self.stock,
            "state": STATE_NAMES[self.state()],
            "fault": self.fault,
            "vends": self.vends,
        }


@dataclass(slots=True)
class WireCounters:
    polls: int = 0
    answered: int = 0  # answers (to polls and reports) within answer_ms
    late: int = 0  # answers that came after answer_ms
    missed: int = 0  # polls and reports that got no answer at all
    max_answer_ms: float = 0.0
    reports: int = 0  # reports sent, retransmissions included
    retransmissions: int = 0
    dropped_reports: int = 0
    commands: int = 0
    duplicates: int = 0  # commands that repeated the previous packet number
    malformed: int = 0
    unexpected: int = 0  # frames that were not an answer we could use


@dataclass(slots=True)
class _Exchange:
    """One frame the VMC sent and is waiting for an answer to."""

    kind: Literal["poll", "report"]
    sent: float
    answered: bool = False
    deadline: asyncio.TimerHandle | None = None


@dataclass(slots=True)
class _Report:
    frame: bytes
    what: str  # for the log
    tries: int = 0


@dataclass(slots=True)
class _Vend:
    slot: int
    pack: int
    t: float = field(default_factory=time.monotonic)


# ---- the device on its pty ----------------------------------------------------------


class VendingMachine(SerialDevice):
    kind = "vending"

    def __init__(self, spec: VendingSpec) -> None:
        super().__init__(spec.id)
        self.slots = {
            s.slot: Slot(s.barcode, s.name, round(s.price * 100), s.stock) for s in spec.slots
        }
        self._poll_s = spec.poll_ms / 1000
        self._answer_s = spec.answer_ms / 1000
        self._vend_s = spec.vend_ms / 1000
        self._retries = spec.retries
        self.muted = False  # stops polling, as a VMC that lost power
        self._host_silent = False
        self.counters = WireCounters()
        self.answer_ms: deque[float] = deque(maxlen=ANSWER_SAMPLES)  # recent, for percentiles
        self.vends: deque[dict[str, object]] = deque(maxlen=VEND_LOG_SIZE)
        self._reader = wire.PacketReader()
        self._pack = 0  # our last packet number
        # The last command executed: a retransmission repeats it exactly (packet number
        # and all); comparing the whole packet keeps a restarted host, whose numbers
        # start over, from having its first command taken for a repeat.
        self._last_command: wire.Packet | None = None
        self._reports: deque[_Report] = deque()
        self._exchange: _Exchange | None = None
        self._buys: asyncio.Queue[_Vend] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifecycle ---------------------------------------------------------------------

    def plugged_in(self) -> None:
        # A fresh cable: framing and packet numbers start over, as after a power cycle.
        self._reader = wire.PacketReader()
        self._last_command = None
        self._exchange = None

    async def start(self) -> None:
        await super().start()
        self._tasks = [
            asyncio.create_task(self._master(), name=f"{self.id} polls"),
            asyncio.create_task(self._motors(), name=f"{self.id} motors"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await super().stop()

    # --- the master loop ---------------------------------------------------------------

    async def _master(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += self._poll_s
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if loop.time() - next_at > self._poll_s:
                next_at = loop.time()  # we were held up; don't burst to catch up
            if self.muted or not self.plugged:
                continue
            self._cycle()

    def _cycle(self) -> None:
        previous = self._exchange
        if previous is not None and previous.deadline is not None:
            previous.deadline.cancel()
        report = self._reports[0] if self._reports else None
        if report is not None:
            if report.tries > self._retries:
                self._reports.popleft()
                self.counters.dropped_reports += 1
                log.warning("%s: %s never acknowledged; dropped", self.id, report.what)
                report = self._reports[0] if self._reports else None
        if report is not None:
            if report.tries:
                self.counters.retransmissions += 1
            report.tries += 1
            frame, kind = report.frame, "report"
            self.counters.reports += 1
        else:
            frame, kind = wire.packet(wire.POLL), "poll"
            self.counters.polls += 1
        try:
            self.send(frame)
        except DeviceUnplugged:
            return
        exchange = _Exchange(kind, time.monotonic())  # type: ignore[arg-type]  # kind: a frame kind
        loop = asyncio.get_running_loop()
        exchange.deadline = loop.call_later(self._answer_s, self._no_answer, exchange)
        self._exchange = exchange

    def _no_answer(self, exchange: _Exchange) -> None:
        if exchange.answered:
            return
        self.counters.missed += 1
        if not self._host_silent:  # once per silence, not every 200 ms
            self._host_silent = True
            log.info(
                "%s: no answer to a %s within %.0f ms",
                self.id,
                exchange.kind,
                self._answer_s * 1000,
            )

    def _answer_came(self, now: float) -> _Exchange | None:
        """Time the answer to the frame on the wire; None when nothing was waiting."""
        exchange = self._exchange
        if exchange is None or exchange.answered:
            return None
        exchange.answered = True
        if self._host_silent:
            self._host_silent = False
            log.info("%s: the host answers again", self.id)
        elapsed = now - exchange.sent
        self.answer_ms.append(elapsed * 1000)
        self.counters.max_answer_ms = max(self.counters.max_answer_ms, elapsed * 1000)
        if elapsed > self._answer_s:
            self.counters.late += 1
            self.counters.missed -= 1  # it was counted missed at the deadline
            log.warning("%s: answer came after %.1f ms", self.id, elapsed * 1000)
            return None
        self.counters.answered += 1
        return exchange

    # --- what the upper computer sends ---------------------------------------------------

    def received(self, data: bytes) -> None:
        now = time.monotonic()
        for item in self._reader.feed(data):
            if isinstance(item, wire.Noise):
                self.counters.malformed += 1
                log.warning(
                    "%s: malformed bytes skipped (%s): %s", self.id, item.why, item.data.hex(" ")
                )
                continue
            self._handle(item, now)

    def _handle(self, packet: wire.Packet, now: float) -> None:
        if packet.cmd in (wire.POLL, wire.SELECTION_STATUS, wire.DISPENSING_STATUS):
            self._answer_came(now)
            self.counters.unexpected += 1
            log.warning("%s: the host sent %02X, which only a VMC sends", self.id, packet.cmd)
            return
        if packet.cmd == wire.ACK:
            exchange = self._answer_came(now)
            if exchange is not None and exchange.kind == "report" and self._reports:
                self._reports.popleft()  # delivered
            elif exchange is None:
                self.counters.unexpected += 1
            return
        try:
            cmd = wire.read_host_command(packet)
        except ValueError as exc:
            self.counters.malformed += 1
            log.warning("%s: bad packet skipped: %s", self.id, exc)
            return
        self._answer_came(now)
        # A command: acknowledged at once, executed once per packet number.
        self.counters.commands += 1
        with contextlib.suppress(DeviceUnplugged):
            self.send(wire.packet(wire.ACK))
        if packet == self._last_command:
            self.counters.duplicates += 1
            log.info(
                "%s: %s again (retransmission): not executed twice", self.id, wire.describe(cmd)
            )
            return
        self._last_command = packet
        self._execute(cmd)

    def _execute(self, cmd: wire.HostCommand) -> None:
        log.info("%s: %s", self.id, wire.describe(cmd))
        n = cmd.selection
        if n is None:
            return  # acknowledged; a real board would act on it
        s = self.slots.get(n)
        if cmd.cmd == wire.CHECK_SELECTION:
            self._report_selection(n, s.state() if s else wire.Selection.NOT_EXIST)
        elif cmd.cmd == wire.BUY:
            self._buys.put_nowait(_Vend(n, cmd.pack))
        elif s is None:
            self._report_selection(n, wire.Selection.NOT_EXIST)
        elif cmd.cmd == wire.SET_PRICE:
            s.price_fen = cmd.value or 0
        elif cmd.cmd == wire.SET_INVENTORY:
            s.stock, s.faulted = cmd.value or 0, False

    # --- reports ---------------------------------------------------------------------------

    def _report(self, build: Callable[[int], bytes], what: str) -> None:
        """Queue a report; `build` makes its frame for the packet number it gets here."""
        if len(self._reports) >= MAX_REPORTS:
            log.warning("%s: %d reports waiting; dropped the newest", self.id, MAX_REPORTS)
            self.counters.dropped_reports += 1
            return
        self._pack = self._pack % 255 + 1  # 1..255, then 1 again (never 0)
        self._reports.append(_Report(build(self._pack), f"{what} #{self._pack}"))

    def _report_selection(self, slot: int, status: wire.Selection) -> None:
        self._report(
            lambda pack: wire.selection_status(pack, status, slot),
            f"SELECTION slot {slot} {status.name.lower()}",
        )

    def _report_dispense(self, slot: int, status: wire.Dispensing) -> None:
        self._report(
            lambda pack: wire.dispensing_status(pack, status, slot),
            f"DISPENSE slot {slot} {status.name.lower()}",
        )

    # --- the motors ------------------------------------------------------------------------

    async def _motors(self) -> None:
        while True:
            buy = await self._buys.get()
            result = await self._vend(buy.slot)
            s = self.slots.get(buy.slot)
            self.vends.append(
                {
                    "t": buy.t,
                    "slot": buy.slot,
                    "pack": buy.pack,
                    "barcode": s.barcode if s else None,
                    "result": result,
                }
            )
            log.info("%s: vend slot %d: %s", self.id, buy.slot, result)

    async def _vend(self, slot_no: int) -> str:
        s = self.slots.get(slot_no)
        if s is None:
            self._report_dispense(slot_no, wire.Dispensing.NO_MOTOR)
            return "no_motor"
        fault, s.fault = s.fault, None
        if fault == "no_motor":
            self._report_dispense(slot_no, wire.Dispensing.NO_MOTOR)
            return "no_motor"
        if fault == "empty":
            s.stock = 0
        if s.stock <= 0:
            self._report_selection(slot_no, wire.Selection.OUT_OF_STOCK)
            return "empty"
        self._report_dispense(slot_no, wire.Dispensing.DISPENSING)
        await asyncio.sleep(self._vend_s)
        if fault == "jam":
            s.faulted = True
            self._report_dispense(slot_no, wire.Dispensing.JAMMED)
            return "jammed"
        if fault == "motor":
            s.faulted = True
            self._report_dispense(slot_no, wire.Dispensing.MOTOR_NOT_STOPPED)
            return "motor"
        s.stock -= 1
        s.vends += 1
        s.faulted = False
        self._report_dispense(slot_no, wire.Dispensing.SUCCESS)
        if s.stock == 0:
            self._report_selection(slot_no, wire.Selection.OUT_OF_STOCK)
        return "success"

    # --- control -----------------------------------------------------------------------------

    def inject(self, slot: int, fault: str) -> dict[str, object]:
        s = self.slots[slot]
        s.fault = None if fault == "clear" else fault
        if fault == "clear":
            s.faulted = False
        log.info(
            "%s: slot %d: next vend %s",
            self.id,
            slot,
            "works" if fault == "clear" else f"fails ({fault})",
        )
        return {"slot": slot, **s.snapshot()}

    def snapshot(self) -> dict[str, object]:
        return {
            "slots": {str(n): s.snapshot() for n, s in sorted(self.slots.items())},
            "vends": list(self.vends),
            "muted": self.muted,
            "reports_waiting": len(self._reports),
            "wire": asdict(self.counters) | _percentiles(self.answer_ms),
        }


def _percentiles(samples: deque[float]) -> dict[str, float | None]:
    """p50/p99 of the recent answer times (ms), as the VMC measured them on the wire."""
    if not samples:
        return {"answer_p50_ms": None, "answer_p99_ms": None}
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {"answer_p50_ms": at(0.5), "answer_p99_ms": at(0.99)}


# ---- control API --------------------------------------------------------------------


class FaultBody(StrictBody):
    slot: int = Field(ge=1, le=wire.MAX_SELECTION)
    fault: Literal["jam", "motor", "no_motor", "empty", "clear"]


class MuteBody(StrictBody):
    on: bool


class StockBody(StrictBody):
    slot: int = Field(ge=1, le=wire.MAX_SELECTION)
    stock: int = Field(ge=0, le=wire.MAX_INVENTORY)


def routes(devices: Mapping[str, SimDevice]) -> list[web.RouteDef]:
    def machine_of(request: web.Request) -> VendingMachine:
        return find_device(devices, request.match_info["id"], VendingMachine, "vending machine")

    def slot_of(machine: VendingMachine, slot: int) -> int:
        if slot not in machine.slots:
            raise json_error(web.HTTPNotFound, f"{machine.id} has no slot {slot}")
        return slot

    async def get_machine(request: web.Request) -> web.Response:
        return web.json_response(machine_of(request).snapshot())

    async def post_fault(request: web.Request) -> web.Response:
        machine = machine_of(request)
        body = await read_body(request, FaultBody)
        return web.json_response(machine.inject(slot_of(machine, body.slot), body.fault))

    async def post_mute(request: web.Request) -> web.Response:
        machine = machine_of(request)
        body = await read_body(request, MuteBody)
        machine.muted = body.on
        log.info("%s: %s", machine.id, "stops polling" if body.on else "polls again")
        return web.json_response({"muted": body.on})

    async def post_stock(request: web.Request) -> web.Response:
        machine = machine_of(request)
        body = await read_body(request, StockBody)
        s = machine.slots[slot_of(machine, body.slot)]
        s.stock, s.faulted = body.stock, False
        return web.json_response({"slot": body.slot, **s.snapshot()})

    return [
        web.get("/vending/{id}", get_machine),
        web.post("/vending/{id}/fault", post_fault),
        web.post("/vending/{id}/mute", post_mute),
        web.post("/vending/{id}/stock", post_stock),
    ]


KIND = DeviceKind(spec=VendingSpec, build=VendingMachine, routes=routes)
