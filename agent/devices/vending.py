"""A vending machine controller (kind `vending`) on RS232: the VMC is master, we answer.

The VMC sends one frame every ~200 ms: a POLL, or a report of its own (dispensing
status, selection status). Every frame is answered from the loop callback that reads
it, so the answer is on the wire well within the 100 ms the VMC waits:

- a report gets an ACK (a report repeating the previous one exactly is the VMC's
  retransmission after a lost ACK: acknowledged again, acted on once);
- a POLL gets our oldest queued command (buy, check, set price, set inventory), or a
  resend of the one the VMC has not acknowledged yet (same packet number, `retries`
  times, then it fails), or an ACK when there is nothing to say.

Vends go one at a time (the machine has one delivery port): `vend(slot)` queues a buy
and waits for the slot's final dispensing status (success, jammed, motor, no motor),
or a selection status saying the slot is empty, or `timeout`.

The machine is online while frames keep coming; none for `offline_after_ms` (or the
serial port gone) is offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter_ns

from agent.config.schema import VendingDevice
from agent.devices.base import Device, DeviceError, EventSink
from agent.devices.presence import Presence
from agent.devices.protocols import vmc
from agent.devices.serial_link import SerialLink
from runtime.backoff import Backoff

log = logging.getLogger(__name__)

# Outcome of a vend, as the vend.completed / vend.failed events name it.
OUTCOMES: dict[vmc.DispenseState, str] = {
    vmc.DispenseState.SUCCESS: "success",
    vmc.DispenseState.JAMMED: "jammed",
    vmc.DispenseState.MOTOR_NOT_STOPPED: "motor",
    vmc.DispenseState.NO_MOTOR: "no_motor",
}
SLOT_STATES: dict[vmc.SlotState, str] = {
    vmc.SlotState.OK: "ok",
    vmc.SlotState.EMPTY: "empty",
    vmc.SlotState.FAULT: "fault",
    vmc.SlotState.ABSENT: "absent",
}


class VendNotStarted(DeviceError):
    """The buy never reached the wire (machine offline or silent): nothing was vended."""


@dataclass(slots=True)
class WireCounters:
    """What went over the line since start, for diagnostics and the bench."""

    polls: int = 0
    reports: int = 0
    duplicates: int = 0  # reports the VMC repeated because our ACK went missing
    commands: int = 0  # commands sent, resends included
    resends: int = 0
    malformed: int = 0
    answer_max_us: int = 0  # frame read -> answer written, inside this process


@dataclass(eq=False, slots=True)
class _Command:
    make: Callable[[int], vmc.Message]
    future: asyncio.Future[None]
    frame: bytes = b""
    tries: int = 0

    @property
    def written(self) -> bool:
        return self.tries > 0


@dataclass(slots=True)
class _VendWait:
    slot: int
    buy: _Command
    outcome: asyncio.Future[str]


class VendingMachine(Device):
    def __init__(
        self, cfg: VendingDevice, sink: EventSink, *, backoff: Backoff | None = None
    ) -> None:
        self.id = cfg.id
        self._cfg = cfg
        self._presence = Presence(cfg.id, sink)
        self._link = SerialLink(
            cfg.id,
            cfg.port,
            cfg.baudrate,
            on_data=self._on_bytes,
            on_up=self._on_link_up,
            on_down=self._on_link_down,
            backoff=backoff,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deframer = vmc.Deframer()
        self._queue: deque[_Command] = deque()
        self._unacked: _Command | None = None
        # A random first packet number: after our restart the VMC must not take our
        # first command for a repeat of the last one it saw.
        self._pack = random.randint(0, vmc.MAX_PACK - 1)
        self._last_report: vmc.Message | None = None
        self._last_frame_at = 0.0
        self._vend: _VendWait | None = None
        self._vend_lock = asyncio.Lock()
        self._watchdog: asyncio.Task[None] | None = None
        self._counters = WireCounters()
        self.slots: dict[int, str] = {}  # slot -> ok | empty | fault | absent, as last reported
        # Called on the loop with (slot, state) whenever the VMC reports a slot's state.
        self.slot_listeners: list[Callable[[int, str], None]] = []

    # --- Device ---------------------------------------------------------------------

    @property
    def online(self) -> bool:
        return self._presence.online

    @property
    def offline_reason(self) -> str:
        return self._presence.reason

    @property
    def counters(self) -> WireCounters:
        return dataclasses.replace(self._counters)

    async def start(self) -> None:
        if self._watchdog is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._last_frame_at = self._loop.time()
        await self._link.start()
        self._watchdog = asyncio.create_task(self._watch(), name=f"watch {self.id}")

    async def stop(self) -> None:
        task, self._watchdog = self._watchdog, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._fail_all(DeviceError(f"vending machine {self.id} stopped"))
        await self._link.stop()

    # --- what the service uses --------------------------------------------------------

    async def vend(self, slot: int) -> str:
        """Vend one item from `slot`: success | jammed | motor | no_motor | empty |
        timeout. Raises VendNotStarted when the buy never went out (nothing vended)."""
        async with self._vend_lock:
            assert self._loop is not None
            loop = self._loop
            deadline = loop.time() + self._cfg.vend_timeout_s
            # A customer is waiting: the buy goes ahead of price and stock updates.
            buy = self._submit(lambda pack: vmc.Buy(pack, slot), urgent=True)
            wait = _VendWait(slot, buy, loop.create_future())
            self._vend = wait
            try:
                try:
                    async with asyncio.timeout_at(deadline):
                        await asyncio.shield(buy.future)
                except TimeoutError:
                    if not buy.written:
                        buy.future.cancel()  # still queued: it will never go out now
                        raise VendNotStarted(
                            f"vending machine {self.id} did not poll for "
                            f"{self._cfg.vend_timeout_s:g} s: slot {slot} not vended"
                        ) from None
                    return "timeout"
                except DeviceError as exc:
                    if not buy.written:
                        raise VendNotStarted(str(exc)) from exc
                    # Sent but never acknowledged: the VMC may still have it. Its report
                    # decides, until the deadline.
                    log.warning("%s: %s; waiting for the slot's report", self.id, exc)
                try:
                    async with asyncio.timeout_at(deadline):
                        return await asyncio.shield(wait.outcome)
                except TimeoutError:
                    log.warning("%s: no final dispensing status for slot %d", self.id, slot)
                    return "timeout"
            finally:
                self._vend = None

    async def check(self, slot: int) -> None:
        """Ask for a slot's state; the answer arrives as a report (slot_listeners)."""
        await self._submit(lambda pack: vmc.CheckSelection(pack, slot)).future

    async def set_price(self, slot: int, price_fen: int) -> None:
        await self._submit(lambda pack: vmc.SetPrice(pack, slot, price_fen)).future

    async def set_inventory(self, slot: int, qty: int) -> None:
        await self._submit(lambda pack: vmc.SetInventory(pack, slot, qty)).future

    def _submit(self, make: Callable[[int], vmc.Message], *, urgent: bool = False) -> _Command:
        if self._loop is None or not self._link.connected:
            raise VendNotStarted(
                f"vending machine {self.id} is offline ({self._presence.reason or 'not started'})"
            )
        cmd = _Command(make, self._loop.create_future())
        # Whoever gave up on it (a vend that timed out) no longer reads its failure.
        cmd.future.add_done_callback(lambda f: f.cancelled() or f.exception())
        if urgent:
            self._queue.appendleft(cmd)
        else:
            self._queue.append(cmd)
        return cmd

    # --- the wire: every frame answered from this callback ------------------------------

    def _on_bytes(self, data: bytes) -> None:
        received_ns = perf_counter_ns()
        assert self._loop is not None
        self._last_frame_at = self._loop.time()
        msgs: list[vmc.Message] = []
        for item in self._deframer.feed(data):
            if isinstance(item, vmc.FrameError):
                self._counters.malformed += 1
                log.warning("%s: malformed bytes from the VMC skipped: %s", self.id, item)
                continue
            try:
                msgs.append(vmc.from_frame(item))
            except vmc.FrameError as exc:
                self._counters.malformed += 1
                log.warning("%s: bad frame from the VMC skipped: %s", self.id, exc)
        if msgs:
            self._presence.up()
        # Several frames in one read are a backlog (the port was just opened, or we were
        # held up): the VMC waits only for the answer to its newest frame, and an ACK
        # names no packet, so only that one is answered. The others are still heard.
        for i, msg in enumerate(msgs):
            self._handle(msg, answer=i == len(msgs) - 1)
        spent_us = (perf_counter_ns() - received_ns) // 1000
        self._counters.answer_max_us = max(self._counters.answer_max_us, spent_us)

    def _handle(self, msg: vmc.Message, *, answer: bool) -> None:
        match msg:
            case vmc.Poll():
                self._counters.polls += 1
                if answer:
                    self._answer_poll()
            case vmc.Ack():
                cmd, self._unacked = self._unacked, None
                if cmd is not None and not cmd.future.done():
                    cmd.future.set_result(None)
            case vmc.SelectionStatus() | vmc.DispenseStatus() | vmc.Unknown():
                if answer:
                    self._write(vmc.encode(vmc.Ack()))
                self._counters.reports += 1
                if msg == self._last_report:
                    self._counters.duplicates += 1
                    log.info("%s: %s repeated by the VMC", self.id, vmc.describe(msg))
                    return
                self._last_report = msg
                self._on_report(msg)
            case _:
                log.warning("%s: the VMC sent %s, a host command", self.id, vmc.describe(msg))

    def _answer_poll(self) -> None:
        cmd = self._unacked
        if cmd is not None:
            if cmd.tries <= self._cfg.retries and not cmd.future.done():
                cmd.tries += 1
                self._counters.resends += 1
                self._counters.commands += 1
                log.info("%s: no ACK from the VMC; resending %s", self.id, cmd.frame.hex(" "))
                self._write(cmd.frame)
                return
            self._unacked = None
            if not cmd.future.done():
                cmd.future.set_exception(
                    DeviceError(
                        f"vending machine {self.id} did not acknowledge "
                        f"{vmc.describe(vmc.decode(cmd.frame))} after {cmd.tries} tries"
                    )
                )
        while self._queue:
            cmd = self._queue.popleft()
            if cmd.future.done():  # given up while queued
                continue
            self._pack = vmc.next_pack(self._pack)
            cmd.frame = vmc.encode(cmd.make(self._pack))
            cmd.tries = 1
            self._counters.commands += 1
            self._unacked = cmd
            self._write(cmd.frame)
            return
        self._write(vmc.encode(vmc.Ack()))

    def _write(self, frame: bytes) -> None:
        try:
            self._link.write(frame)
        except DeviceError as exc:
            log.warning("%s: %s", self.id, exc)

    def _on_report(self, msg: vmc.Message) -> None:
        log.info("%s: %s", self.id, vmc.describe(msg))
        wait = self._vend
        match msg:
            case vmc.SelectionStatus(_, state, slot):
                self._slot_is(slot, SLOT_STATES[state])
                if (
                    wait is not None
                    and wait.slot == slot
                    and wait.buy.written
                    and state in (vmc.SlotState.EMPTY, vmc.SlotState.ABSENT)
                ):
                    outcome = "empty" if state is vmc.SlotState.EMPTY else "no_motor"
                    self._vend_ended(wait, outcome)
            case vmc.DispenseStatus(_, state, slot) if state.final:
                self._slot_is(
                    slot,
                    {
                        vmc.DispenseState.SUCCESS: "ok",
                        vmc.DispenseState.NO_MOTOR: "absent",
                    }.get(state, "fault"),
                )
                if wait is not None and wait.slot == slot and wait.buy.written:
                    self._vend_ended(wait, OUTCOMES[state])
                else:
                    log.warning(
                        "%s: slot %d reported %s with no vend waiting for it (a vend that "
                        "timed out?)",
                        self.id,
                        slot,
                        OUTCOMES[state],
                    )

    def _vend_ended(self, wait: _VendWait, outcome: str) -> None:
        if not wait.outcome.done():
            wait.outcome.set_result(outcome)

    def _slot_is(self, slot: int, state: str) -> None:
        if self.slots.get(slot) == state:
            return
        self.slots[slot] = state
        for listener in self.slot_listeners:
            listener(slot, state)

    # --- health -----------------------------------------------------------------------

    def _on_link_up(self) -> None:
        # A new cable or a rebooted VMC: framing and its packet numbers start over.
        self._deframer.clear()
        self._last_report = None

    def _on_link_down(self, reason: str) -> None:
        self._fail_all(DeviceError(f"vending machine {self.id} is offline ({reason})"))
        self._presence.down(reason)

    def _fail_all(self, exc: DeviceError) -> None:
        doomed = list(self._queue)
        if self._unacked is not None:
            doomed.append(self._unacked)
        self._queue.clear()
        self._unacked = None
        for cmd in doomed:
            if not cmd.future.done():
                cmd.future.set_exception(exc)

    async def _watch(self) -> None:
        assert self._loop is not None
        limit = self._cfg.offline_after_ms / 1000
        while True:
            await asyncio.sleep(min(0.1, limit / 4))
            if not self._link.connected:
                continue
            if self._loop.time() - self._last_frame_at > limit:
                if self._presence.online:
                    self._last_report = None  # it may come back rebooted
                self._presence.down(
                    f"no poll from the VMC on {self._link.port} for over "
                    f"{self._cfg.offline_after_ms} ms"
                )
