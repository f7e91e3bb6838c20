"""Lock bus driver against lock boards played by the test on a real pty."""

from __future__ import annotations

import asyncio
import logging
import os
import select
import time
from pathlib import Path

import pytest

from agent.config.schema import LockBusDevice
from agent.devices.base import (
    ContactChanged,
    DeviceError,
    DeviceOffline,
    DeviceOnline,
    DeviceUncertain,
)
from agent.devices.lockbus import BoardNotAnswering, LockBus
from agent.devices.protocols import lockboard as lb
from runtime.backoff import Backoff
from tests.support.pty_devices import Events, FakePort, eventually

FAST = Backoff(initial_s=0.01, cap_s=0.05)


class Boards:
    """Lock boards on the far end of the bus: answer query-all and open frames."""

    def __init__(self, port_path: Path, addresses: list[int]) -> None:
        self.locked = {b: [True] * lb.MAX_LOCK for b in addresses}
        self.silent: set[int] = set()
        self.ignore_opens = 0  # drop this many OPEN frames (a reply lost on the wire)
        self.prefix = b""  # sent before the next reply (line noise)
        self.hold = False  # keep requests unanswered until release()
        self.requests: list[lb.Request] = []
        self._held: list[lb.Request] = []
        self._decoder = lb.RequestDecoder()
        self.port = FakePort(port_path, on_bytes=self.on_bytes)

    def on_bytes(self, data: bytes) -> None:
        for item in self._decoder.feed(data):
            assert not isinstance(item, lb.FrameError), f"the driver sent a bad frame: {item}"
            self.requests.append(item)
            if item.board in self.silent or item.board not in self.locked:
                continue
            if isinstance(item, lb.OpenLock) and self.ignore_opens:
                self.ignore_opens -= 1
                continue
            if self.hold:
                self._held.append(item)
            else:
                self.answer(item)

    def answer(self, req: lb.Request) -> None:
        match req:
            case lb.QueryAll(board):
                reply: lb.Reply = lb.BoardStatus(board, tuple(self.locked[board]))
            case lb.OpenLock(board, lock):
                self.locked[board][lock - 1] = False
                reply = lb.LockStatus(board, lock, locked=False)
            case _:
                raise AssertionError(f"unexpected request {req}")
        self.port.write(self.prefix + lb.encode_reply(reply, to=req))
        self.prefix = b""

    def release(self) -> None:
        self.hold = False
        held, self._held = self._held, []
        for req in held:
            self.answer(req)

    def of(self, cls: type) -> list:
        return [r for r in self.requests if isinstance(r, cls)]


def bus_config(port: Path, boards: list[int], **kw: int) -> LockBusDevice:
    settings = {"poll_ms": 20, "timeout_ms": 30, "retries": 2} | kw
    return LockBusDevice(kind="lockbus", id="bus1", port=port, boards=boards, **settings)


@pytest.fixture
async def rig(port_path: Path, events: Events):
    """(bus, boards) with boards 1 and 2, started and online."""
    boards = Boards(port_path, [1, 2])
    bus = LockBus(bus_config(port_path, [1, 2]), events, backoff=FAST)
    await bus.start()
    await events.wait_count(DeviceOnline, 1)
    yield bus, boards
    await bus.stop()
    boards.port.unplug()


async def test_unlock_writes_the_open_frame_and_returns_on_the_boards_reply(rig) -> None:
    bus, boards = rig
    await bus.channel(2, 7).unlock(5)
    assert lb.OpenLock(2, 7) in boards.requests
    assert bytes.fromhex("8a 02 07 11 9e") in boards.port.received
    assert not boards.locked[2][6]
    counters = bus.counters
    assert counters.frames_sent >= 1 and counters.replies >= 1 and counters.malformed == 0


async def test_open_frame_is_written_before_unlock_yields_to_the_loop(
    port_path: Path, events: Events
) -> None:
    boards = Boards(port_path, [1])
    bus = LockBus(bus_config(port_path, [1], poll_ms=60_000), events, backoff=FAST)
    await bus.start()
    await events.wait_count(DeviceOnline, 1)
    master = boards.port._master
    asyncio.get_running_loop().remove_reader(master)  # read the wire by hand below
    lock = bus.channel(1, 3)
    spent: list[int] = []
    try:
        for _ in range(30):
            coro = lock.unlock(5)
            t0 = time.perf_counter_ns()
            waiting_for_reply = coro.send(None)  # runs unlock() up to its first await
            spent.append(time.perf_counter_ns() - t0)
            # No loop iteration has run since, yet the frame is already on the wire.
            assert select.select([master], [], [], 1.0)[0]
            assert os.read(master, 64) == lb.encode_request(lb.OpenLock(1, 3))
            boards.answer(lb.OpenLock(1, 3))
            await eventually(waiting_for_reply.done)
            with pytest.raises(StopIteration):
                coro.send(None)
    finally:
        await bus.stop()
        boards.port.unplug()
    spent.sort()
    p50_us = spent[len(spent) // 2] / 1000
    print(f"unlock() call to OPEN frame written: p50 {p50_us:.1f} us")
    assert p50_us < 2000  # microseconds in practice; generous for loaded CI machines


async def test_feedback_changes_produce_contact_changed_exactly_on_change(
    rig, events: Events
) -> None:
    bus, boards = rig
    bus.watch(1, 3)
    bus.watch(2, 24)
    initial = await events.wait_count(ContactChanged, 2)
    assert sorted(initial, key=lambda e: e.input) == [
        ContactChanged("bus1", "1.3", open=False),
        ContactChanged("bus1", "2.24", open=False),
    ]
    polls = len(boards.requests)
    await eventually(lambda: len(boards.requests) >= polls + 6)  # three more rounds
    assert len(events.of(ContactChanged)) == 2  # nothing changed, nothing reported

    boards.locked[1][2] = False  # door 1.3 opens
    boards.locked[1][4] = False  # an unwatched channel: never reported
    await events.wait_count(ContactChanged, 3)
    polls = len(boards.requests)
    await eventually(lambda: len(boards.requests) >= polls + 6)
    boards.locked[1][2] = True  # and closes again
    await events.wait_count(ContactChanged, 4)
    await asyncio.sleep(0.1)
    assert events.of(ContactChanged)[2:] == [
        ContactChanged("bus1", "1.3", open=True),
        ContactChanged("bus1", "1.3", open=False),
    ]


async def test_open_goes_ahead_of_queued_polls(port_path: Path, events: Events) -> None:
    addresses = [1, 2, 3, 4, 5, 6]
    boards = Boards(port_path, addresses)
    boards.hold = True
    bus = LockBus(bus_config(port_path, addresses, timeout_ms=500), events, backoff=FAST)
    await bus.start()
    try:
        await eventually(lambda: len(boards.requests) == 1)
        assert boards.requests == [lb.QueryAll(1)]  # five more polls wait behind it
        opening = asyncio.create_task(bus.channel(6, 2).unlock(5))
        await asyncio.sleep(0.05)
        assert len(boards.requests) == 1  # half-duplex: nothing talks over the poll
        boards.release()
        await opening
        await eventually(lambda: len(boards.requests) >= 7)
        assert boards.requests[:3] == [lb.QueryAll(1), lb.OpenLock(6, 2), lb.QueryAll(2)]
    finally:
        await bus.stop()
        boards.port.unplug()


async def test_garbage_before_a_reply_is_skipped_logged_and_the_reply_used(
    rig, caplog: pytest.LogCaptureFixture
) -> None:
    bus, boards = rig
    caplog.set_level(logging.WARNING)
    boards.prefix = bytes.fromhex("00 ff 8a 01")  # noise, including a false frame start
    await bus.channel(1, 1).unlock(5)
    assert "skipped 4 bytes" in caplog.text and "00 ff 8a 01" in caplog.text
    assert bus.counters.malformed == 1
    assert bus.counters.timeouts == 0  # the reply after the noise was used, not retried


async def test_lost_reply_is_retried(rig) -> None:
    bus, boards = rig
    boards.ignore_opens = 1
    await bus.channel(1, 2).unlock(5)
    assert boards.of(lb.OpenLock) == [lb.OpenLock(1, 2)] * 2
    assert bus.counters.timeouts == 1


async def test_unanswered_open_is_retried_then_raises_naming_the_board(
    rig, caplog: pytest.LogCaptureFixture
) -> None:
    bus, boards = rig
    boards.ignore_opens = 100
    with pytest.raises(BoardNotAnswering, match="lock board 2 on bus bus1"):
        await bus.channel(2, 5).unlock(5)
    assert boards.of(lb.OpenLock) == [lb.OpenLock(2, 5)] * 3  # retries=2
    assert "lock board 2" in caplog.text and "after 3 tries" in caplog.text
    assert isinstance(BoardNotAnswering("x"), DeviceError)


async def test_an_open_that_went_out_unanswered_is_uncertain_one_that_never_left_is_not(
    rig, events: Events
) -> None:
    """The door service keeps a pass used when the board may have opened: an OPEN on the
    wire with no reply (lost to noise, or the adapter pulled while it waited) may have;
    one refused before it was written cannot have."""
    bus, boards = rig
    boards.ignore_opens = 100
    with pytest.raises(DeviceUncertain):
        await bus.channel(1, 3).unlock(5)
    boards.ignore_opens = 0
    boards.hold = True
    opening = asyncio.create_task(bus.channel(1, 4).unlock(5))
    await eventually(lambda: lb.OpenLock(1, 4) in boards.requests)
    boards.port.unplug()
    with pytest.raises(DeviceUncertain, match=r"OPEN 1\.4 was sent"):
        await opening
    await events.wait_count(DeviceOffline, 1)
    with pytest.raises(DeviceError) as never_sent:
        await bus.channel(1, 5).unlock(5)
    assert not isinstance(never_sent.value, DeviceUncertain)


async def test_silent_board_takes_the_bus_offline_until_it_answers_again(
    rig, events: Events
) -> None:
    bus, boards = rig
    boards.silent.add(2)
    [offline] = await events.wait_count(DeviceOffline, 1)
    assert "board(s) 2 " in offline.reason and not bus.online
    await bus.channel(1, 4).unlock(5)  # the other board's doors keep working
    boards.silent.clear()
    await events.wait_count(DeviceOnline, 2)
    assert bus.online
    assert [type(e) for e in events.items if not isinstance(e, ContactChanged)] == [
        DeviceOnline,
        DeviceOffline,
        DeviceOnline,
    ]


async def test_unplugged_bus_fails_fast_and_recovers_on_replug(rig, events: Events) -> None:
    bus, boards = rig
    replacement = os.openpty()  # the replugged adapter: another /dev/pts number
    boards.port.unplug()
    [offline] = await events.wait_count(DeviceOffline, 1)
    assert str(boards.port.path) in offline.reason
    started = time.monotonic()
    with pytest.raises(DeviceError, match="offline"):
        await bus.channel(1, 1).unlock(5)
    assert time.monotonic() - started < 0.01  # no waiting for timeouts
    boards.port.plug(replacement)
    await events.wait_count(DeviceOnline, 2)
    await bus.channel(1, 1).unlock(5)


async def test_query_returns_the_board_status(rig) -> None:
    bus, boards = rig
    boards.locked[2][0] = False
    status = await bus.query(2)
    assert status.board == 2 and not status.is_locked(1) and status.is_locked(2)


async def test_bytes_with_no_request_on_the_wire_are_logged_and_dropped(
    port_path: Path, events: Events, caplog: pytest.LogCaptureFixture
) -> None:
    boards = Boards(port_path, [1])
    bus = LockBus(bus_config(port_path, [1], poll_ms=60_000), events, backoff=FAST)
    await bus.start()
    try:
        await events.wait_count(DeviceOnline, 1)
        boards.port.write(b"\x01\x02\x03")
        await eventually(lambda: bus.counters.malformed == 1)
        assert "01 02 03" in caplog.text
        await bus.channel(1, 1).unlock(5)
    finally:
        await bus.stop()
        await bus.stop()
        boards.port.unplug()


async def test_unknown_board_or_channel_is_refused(rig) -> None:
    bus, _ = rig
    with pytest.raises(DeviceError, match="board 9 is not on lock bus bus1"):
        bus.channel(9, 1)
    with pytest.raises(DeviceError, match="channel 25"):
        bus.watch(1, 25)


async def test_relock_is_a_no_op_for_a_lock_board(rig) -> None:
    bus, boards = rig
    sent = len(boards.requests)
    await bus.channel(1, 1).relock()
    await asyncio.sleep(0)
    assert not any(isinstance(r, lb.OpenLock) for r in boards.requests[sent:])
