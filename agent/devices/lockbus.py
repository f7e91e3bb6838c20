"""An RS485 bus of lock control boards (kind `lockbus`), mastered by the agent.

The bus is half-duplex: one request is on the wire at a time and the next goes out
only once the reply to it has arrived or timed out (a board talking over another
garbles both). Requests wait in a priority queue: OPEN first, then on-demand queries,
then the background polls, so a door waits at most for the one poll already on the
wire, never behind a queue of them.

Everything runs in loop callbacks, without a worker task: `unlock()` writes its frame
straight away when the bus is idle, and the callback that receives a reply writes the
next queued frame in the same breath. That keeps scan-to-frame latency in microseconds.

Each board is polled with a query-all every `poll_ms`; the feedback of watched channels
is reported as ContactChanged on change (and once with the first reading). The bus is
online once every board has answered since the port opened, and goes offline when the
port is lost or any board misses MISSED_POLLS_OFFLINE polls in a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import itertools
import logging
from dataclasses import dataclass
from time import perf_counter_ns

from agent.config.schema import DoorLockConfig, LockboardLock, LockBusDevice
from agent.devices.base import (
    ContactChanged,
    Device,
    DeviceError,
    DeviceUncertain,
    DoorLock,
    EventSink,
)
from agent.devices.presence import Presence
from agent.devices.protocols import lockboard as lb
from agent.devices.serial_link import SerialLink
from runtime.backoff import Backoff

log = logging.getLogger(__name__)

PRIORITY_OPEN = 0
PRIORITY_QUERY = 1
PRIORITY_POLL = 2
# A poll is not retried (the next poll is its retry); this many missed in a row mean the
# board is gone rather than one frame lost to noise.
MISSED_POLLS_OFFLINE = 3


class BoardNotAnswering(DeviceUncertain):
    """A lock board did not answer a request, retries included (it may have heard it)."""


@dataclass(slots=True)
class BusCounters:
    """Wire statistics of one bus since start, for diagnostics."""

    frames_sent: int = 0  # retries included
    replies: int = 0
    timeouts: int = 0  # per attempt
    malformed: int = 0  # runs of bytes skipped because they were no valid reply


@dataclass(eq=False, slots=True)
class _Pending:
    request: lb.Request
    frame: bytes
    tries: int
    tries_left: int
    future: asyncio.Future[lb.Reply]
    is_poll: bool
    sent: bool = False  # written to the bus at least once: the board may have acted on it


def _failed(pending: _Pending, exc: DeviceError) -> DeviceError:
    """The error a request ends with: uncertain once it has been on the wire."""
    if pending.sent and not isinstance(exc, DeviceUncertain):
        return DeviceUncertain(f"{exc} after {_describe(pending.request)} was sent")
    return exc


def _describe(req: lb.Request) -> str:
    match req:
        case lb.OpenLock(board, lock):
            return f"OPEN {board}.{lock}"
        case lb.QueryLock(board, lock):
            return f"QUERY {board}.{lock}"
        case lb.QueryAll(board):
            return f"QUERY-ALL {board}"
    return repr(req)


class LockBus(Device):
    def __init__(
        self,
        cfg: LockBusDevice,
        sink: EventSink,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        self.id = cfg.id
        self.boards = tuple(cfg.boards)
        self._cfg = cfg
        self._sink = sink
        self._timeout_s = cfg.timeout_ms / 1000
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
        self._queue: list[tuple[int, int, _Pending]] = []
        self._seq = itertools.count()
        self._inflight: _Pending | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._rx = bytearray()
        self._watched: set[tuple[int, int]] = set()
        self._contacts: dict[tuple[int, int], bool] = {}  # last reported "open" per channel
        # Consecutive missed polls per board; None until it first answers after the port opened.
        self._missed: dict[int, int | None] = dict.fromkeys(self.boards)
        self._counters = BusCounters()
        self.open_written_ns: dict[tuple[int, int], int] = {}
        self._poll_task: asyncio.Task[None] | None = None

    # --- Device ---------------------------------------------------------------------

    @property
    def online(self) -> bool:
        return self._presence.online

    @property
    def counters(self) -> BusCounters:
        """A snapshot of the wire statistics."""
        return dataclasses.replace(self._counters)

    async def start(self) -> None:
        if self._poll_task is not None:
            return
        self._loop = asyncio.get_running_loop()
        await self._link.start()
        self._poll_task = asyncio.create_task(self._poll_forever(), name=f"poll {self.id}")

    async def stop(self) -> None:
        task, self._poll_task = self._poll_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._fail_all(DeviceError(f"lock bus {self.id} stopped"))
        await self._link.stop()

    # --- what doors use -------------------------------------------------------------

    def door_lock(self, lock: DoorLockConfig) -> LockboardChannel:
        if not isinstance(lock, LockboardLock):
            raise DeviceError(f"{self.id} is a lock board bus: a door's lock here is a channel")
        return self.channel(lock.board, lock.channel)

    def channel(self, board: int, channel: int) -> LockboardChannel:
        self._check(board, channel)
        return LockboardChannel(self, board, channel)

    def watch(self, board: int, channel: int) -> None:
        """Report this channel's feedback as a door contact ("open" = not locked)."""
        self._check(board, channel)
        self._watched.add((board, channel))

    async def open_lock(self, board: int, channel: int) -> lb.LockStatus:
        """Send OPEN and wait for the board's reply. Raises DeviceError when the port
        is not open, BoardNotAnswering when the board stays silent through the retries.

        A bus that is offline only because some *other* board is silent still opens
        this board's doors: one dead board must not lock a store's other doors."""
        self._check(board, channel)
        reply = await self._submit(lb.OpenLock(board, channel), PRIORITY_OPEN, self._cfg.retries)
        assert isinstance(reply, lb.LockStatus)
        return reply

    async def query(self, board: int) -> lb.BoardStatus:
        """Read all 24 channels of a board now (ahead of the polls)."""
        self._check(board, None)
        reply = await self._submit(lb.QueryAll(board), PRIORITY_QUERY, self._cfg.retries)
        assert isinstance(reply, lb.BoardStatus)
        return reply

    def _check(self, board: int, channel: int | None) -> None:
        if board not in self.boards:
            raise DeviceError(f"board {board} is not on lock bus {self.id} (boards: {self.boards})")
        if channel is not None and not 1 <= channel <= lb.MAX_LOCK:
            raise DeviceError(f"lock board channel {channel} out of range 1-{lb.MAX_LOCK}")

    # --- the request queue ----------------------------------------------------------

    def _submit(self, req: lb.Request, priority: int, retries: int) -> asyncio.Future[lb.Reply]:
        if self._loop is None or not self._link.connected:
            raise DeviceError(
                f"lock bus {self.id} is offline ({self._presence.reason or 'not started'})"
            )
        pending = _Pending(
            req,
            lb.encode_request(req),
            tries=retries + 1,
            tries_left=retries,
            future=self._loop.create_future(),
            is_poll=priority == PRIORITY_POLL,
        )
        heapq.heappush(self._queue, (priority, next(self._seq), pending))
        if self._inflight is None:
            self._send_next()
        return pending.future

    def _send_next(self) -> None:
        self._inflight = None
        while self._queue:
            _, _, pending = heapq.heappop(self._queue)
            if pending.future.done():  # its caller gave up (cancelled) while it queued
                continue
            self._transmit(pending)
            return

    def _transmit(self, pending: _Pending) -> None:
        assert self._loop is not None
        if self._rx:
            self._skip(bytes(self._rx), "left over before the next request")
            self._rx.clear()
        try:
            self._link.write(pending.frame)
        except DeviceError as exc:
            pending.future.set_exception(_failed(pending, exc))
            self._fail_all(exc)
            return
        pending.sent = True
        if isinstance(pending.request, lb.OpenLock):
            self.open_written_ns[(pending.request.board, pending.request.lock)] = perf_counter_ns()
        self._inflight = pending
        self._counters.frames_sent += 1
        self._timer = self._loop.call_later(self._timeout_s, self._on_timeout, pending)

    def _on_bytes(self, data: bytes) -> None:
        pending = self._inflight
        if pending is None:
            self._skip(data, "arrived with no request on the wire (a late reply?)")
            return
        self._rx += data
        reply, consumed, garbage = lb.find_reply(bytes(self._rx), to=pending.request)
        if garbage:
            self._skip(garbage, f"while waiting for the reply to {_describe(pending.request)}")
        del self._rx[:consumed]
        if reply is None:
            return
        self._counters.replies += 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._rx:
            self._skip(bytes(self._rx), f"after the reply to {_describe(pending.request)}")
            self._rx.clear()
        if isinstance(reply, lb.BoardStatus):
            self._report_contacts(reply)
        self._board_answered(pending.request.board)
        if not pending.future.done():
            pending.future.set_result(reply)
        self._send_next()

    def _on_timeout(self, pending: _Pending) -> None:
        if self._inflight is not pending:
            return
        self._timer = None
        self._counters.timeouts += 1
        what = _describe(pending.request)
        if pending.tries_left > 0 and not pending.future.done():
            pending.tries_left -= 1
            log.info("lock bus %s: no reply to %s, retrying", self.id, what)
            self._transmit(pending)
            return
        if not pending.future.done():
            message = (
                f"lock board {pending.request.board} on bus {self.id} ({self._link.port}) "
                f"did not answer {what} after {pending.tries} tries"
            )
            if not pending.is_poll:  # a silent poll is reported per board by the poll loop
                log.warning("%s", message)
            pending.future.set_exception(BoardNotAnswering(message))
        self._send_next()

    def _skip(self, data: bytes, where: str) -> None:
        self._counters.malformed += 1
        log.warning(
            "lock bus %s: skipped %d bytes %s: %s", self.id, len(data), where, data.hex(" ")
        )

    def _fail_all(self, exc: DeviceError) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        doomed = [p for _, _, p in self._queue]
        if self._inflight is not None:
            doomed.append(self._inflight)
        self._queue.clear()
        self._inflight = None
        self._rx.clear()
        for pending in doomed:
            if not pending.future.done():
                pending.future.set_exception(_failed(pending, exc))

    # --- port and board health ------------------------------------------------------

    def _on_link_up(self) -> None:
        # Board health is learned afresh: online once every board has answered.
        self._missed = dict.fromkeys(self.boards)

    def _on_link_down(self, reason: str) -> None:
        self._fail_all(DeviceError(f"lock bus {self.id} is offline ({reason})"))
        self._presence.down(reason)

    def _board_answered(self, board: int) -> None:
        if (self._missed.get(board) or 0) >= MISSED_POLLS_OFFLINE:
            log.info("lock bus %s: board %d answers again", self.id, board)
        self._missed[board] = 0
        self._update_presence()

    def _board_missed_poll(self, board: int) -> None:
        missed = (self._missed.get(board) or 0) + 1
        self._missed[board] = missed
        if missed == MISSED_POLLS_OFFLINE:
            log.warning(
                "lock bus %s: board %d (on %s) has not answered %d polls",
                self.id,
                board,
                self._link.port,
                missed,
            )
        self._update_presence()

    def _update_presence(self) -> None:
        if not self._link.connected:
            return
        silent = [b for b, n in self._missed.items() if n is not None and n >= MISSED_POLLS_OFFLINE]
        if silent:
            boards = ", ".join(str(b) for b in silent)
            self._presence.down(f"lock board(s) {boards} on {self._link.port} not answering")
        elif all(n == 0 for n in self._missed.values()):
            self._presence.up()

    def _report_contacts(self, status: lb.BoardStatus) -> None:
        for board, channel in sorted(self._watched):
            if board != status.board:
                continue
            is_open = not status.is_locked(channel)
            if self._contacts.get((board, channel)) != is_open:
                self._contacts[(board, channel)] = is_open
                self._sink(ContactChanged(self.id, f"{board}.{channel}", is_open))

    # --- polling --------------------------------------------------------------------

    async def _poll_forever(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self._cfg.poll_ms / 1000
        while True:
            started = loop.time()
            if self._link.connected:
                await self._poll_round()
            await asyncio.sleep(max(0.0, started + interval - loop.time()))

    async def _poll_round(self) -> None:
        polls: dict[int, asyncio.Future[lb.Reply]] = {}
        for board in self.boards:
            try:
                polls[board] = self._submit(lb.QueryAll(board), PRIORITY_POLL, 0)
            except DeviceError:
                break  # the port went away mid-round
        results = await asyncio.gather(*polls.values(), return_exceptions=True)
        for board, result in zip(polls, results, strict=True):
            if isinstance(result, BoardNotAnswering):
                self._board_missed_poll(board)


class LockboardChannel(DoorLock):
    """One channel of a lock board, as a door's lock.

    The board's OPEN frame has no duration: the board pulses the latch for its own
    fixed time and the latch relocks mechanically when the door shuts. So `seconds`
    is not sent, and `relock()` has nothing to do.
    """

    def __init__(self, bus: LockBus, board: int, channel: int) -> None:
        self.bus = bus
        self.board = board
        self.channel = channel

    async def unlock(self, seconds: float) -> None:
        await self.bus.open_lock(self.board, self.channel)
        self.actuated_ns = self.bus.open_written_ns.get((self.board, self.channel), 0)

    async def relock(self) -> None:
        """Nothing to do: a lock board's latch relocks on its own."""
