"""The lock bus seen by a master on the real pty: frames built and read with the agent's codec
(the simulated boards use their own, shopgate_sim/lockboard_wire.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import serial

from agent.devices.protocols.lockboard import (
    BoardStatus,
    LockStatus,
    OpenLock,
    QueryAll,
    QueryLock,
    Request,
    decode_reply,
    encode_request,
    find_reply,
    reply_length,
)
from tests.support.sim import SimHandle, wait_until

BUS = "/lockbus/lockbus-1"


@pytest.fixture
def bus(sim: SimHandle) -> Iterator[serial.Serial]:
    with sim.open_serial("lockbus-1", timeout=1.0) as port:
        yield port


def ask(port: serial.Serial, req: Request) -> LockStatus | BoardStatus:
    port.write(encode_request(req))
    frame = port.read(reply_length(req))
    return decode_reply(frame, to=req)


def channel(sim: SimHandle, board: int, lock: int) -> dict:
    return sim.get(BUS)["boards"][str(board)][str(lock)]


def test_get_lockbus_lists_every_channel_of_every_board(sim: SimHandle) -> None:
    state = sim.get(BUS)
    assert set(state["boards"]) == {"1", "2"}
    assert set(state["boards"]["1"]) == {str(n) for n in range(1, 25)}
    assert set(state["boards"]["2"]) == {str(n) for n in range(1, 13)}
    for board in state["boards"].values():
        for ch in board.values():
            assert isinstance(ch["locked"], bool) and isinstance(ch["unlock_count"], int)
    assert state["doors"] == {"front": {"board": 1, "channel": 1}}


def test_query_all_reports_the_feedback_of_every_lock(sim: SimHandle, bus: serial.Serial) -> None:
    door_board = ask(bus, QueryAll(1))
    assert door_board == BoardStatus(1, (True,) * 24)
    locker = ask(bus, QueryAll(2))
    expected = tuple(channel(sim, 2, n)["locked"] for n in range(1, 13)) + (False,) * 12
    assert locker == BoardStatus(2, expected)


def test_opening_the_door_strike_counts_and_keeps_reporting_the_closed_contact(
    sim: SimHandle, bus: serial.Serial
) -> None:
    before = channel(sim, 1, 1)
    t0 = time.monotonic()
    assert ask(bus, OpenLock(1, 1)) == LockStatus(1, 1, locked=True)
    after = channel(sim, 1, 1)
    assert after["unlock_count"] == before["unlock_count"] + 1
    assert after["released"] is True and after["locked"] is True
    assert ask(bus, QueryLock(1, 1)) == LockStatus(1, 1, locked=True)
    seen = [
        f
        for f in sim.get(f"{BUS}/frames")["frames"]
        if f["t"] >= t0 and f.get("request") == {"op": "open", "board": 1, "lock": 1}
    ]
    assert len(seen) == 1
    assert seen[0]["hex"] == encode_request(OpenLock(1, 1)).hex()
    assert seen[0]["answered"] is True


def test_the_door_contact_flips_the_feedback_bit(sim: SimHandle, bus: serial.Serial) -> None:
    ask(bus, OpenLock(1, 1))
    reply = sim.post("/doors/front/contact", {"open": True})
    assert reply["door"] == "front" and reply["locked"] is False and reply["forced"] is False
    assert ask(bus, QueryLock(1, 1)) == LockStatus(1, 1, locked=False)
    assert ask(bus, QueryAll(1)).is_locked(1) is False
    sim.post("/doors/front/contact", {"open": False})
    assert ask(bus, QueryLock(1, 1)) == LockStatus(1, 1, locked=True)
    assert ask(bus, QueryAll(1)).is_locked(1) is True


def test_opening_a_door_that_was_not_released_is_forced(sim: SimHandle, bus: serial.Serial) -> None:
    # Channel 2 of board 1 is a strike with no door named on it: never released here.
    before = channel(sim, 1, 2)["forced_count"]
    reply = sim.post(f"{BUS}/boards/1/channels/2/contact", {"open": True})
    assert reply["forced"] is True and reply["locked"] is False
    assert ask(bus, QueryLock(1, 2)) == LockStatus(1, 2, locked=False)
    sim.post(f"{BUS}/boards/1/channels/2/contact", {"open": False})
    assert channel(sim, 1, 2)["forced_count"] == before + 1


def test_a_locker_compartment_springs_open_until_closed(sim: SimHandle, bus: serial.Serial) -> None:
    before = channel(sim, 2, 5)["unlock_count"]
    assert ask(bus, OpenLock(2, 5)) == LockStatus(2, 5, locked=False)
    assert channel(sim, 2, 5)["unlock_count"] == before + 1
    assert ask(bus, QueryAll(2)).is_locked(5) is False
    sim.post(f"{BUS}/boards/2/channels/5/contact", {"open": False})
    assert ask(bus, QueryLock(2, 5)) == LockStatus(2, 5, locked=True)


def test_garbage_is_skipped_and_the_next_frame_still_answered(
    sim: SimHandle, bus: serial.Serial
) -> None:
    t0 = time.monotonic()
    # Noise, a frame with a bad BCC, then a good query.
    bus.write(bytes.fromhex("00 ff 13") + bytes.fromhex("80 01 01 33 00"))
    assert ask(bus, QueryLock(1, 1)) == LockStatus(1, 1, locked=True)
    bus.timeout = 0.2
    assert bus.read(1) == b""  # the garbage got no answer of its own
    frames = [f for f in sim.get(f"{BUS}/frames")["frames"] if f["t"] >= t0]
    assert any("error" in f and "skipped" in f["error"] for f in frames)
    assert frames[-1]["request"] == {"op": "query", "board": 1, "lock": 1}


def test_injected_noise_comes_before_the_next_reply(sim: SimHandle, bus: serial.Serial) -> None:
    sim.post(f"{BUS}/noise", {"hex": "ff 00 80 01"})
    req = QueryAll(1)
    bus.write(encode_request(req))
    raw = bus.read(4 + reply_length(req))
    assert raw[:4] == bytes.fromhex("ff008001")
    reply, used, skipped = find_reply(raw, to=req)
    assert isinstance(reply, BoardStatus) and used == len(raw) and skipped == raw[:4]
    # Only the next reply carries it.
    assert ask(bus, QueryLock(1, 1)) == LockStatus(1, 1, locked=True)


def test_a_muted_board_does_not_answer_until_unmuted(sim: SimHandle, bus: serial.Serial) -> None:
    sim.post(f"{BUS}/boards/2/mute", {"on": True})
    try:
        assert sim.get(BUS)["muted"] == [2]
        before = channel(sim, 2, 1)["unlock_count"]
        bus.timeout = 0.3
        bus.write(encode_request(OpenLock(2, 1)))
        assert bus.read(5) == b""
        assert channel(sim, 2, 1)["unlock_count"] == before
        assert ask(bus, QueryLock(1, 1)) == LockStatus(1, 1, locked=True)  # board 1 still talks
    finally:
        sim.post(f"{BUS}/boards/2/mute", {"on": False})
    bus.timeout = 1.0
    assert isinstance(ask(bus, QueryAll(2)), BoardStatus)
    frames = sim.get(f"{BUS}/frames")["frames"]
    muted = [f for f in frames if f.get("request") == {"op": "open", "board": 2, "lock": 1}]
    assert muted[-1]["answered"] is False


def test_boards_and_locks_not_on_the_bus_stay_silent(sim: SimHandle, bus: serial.Serial) -> None:
    bus.timeout = 0.2
    for req in (QueryAll(7), OpenLock(7, 1), QueryLock(2, 13)):
        bus.write(encode_request(req))
        assert bus.read(1) == b"", req
    bus.timeout = 1.0
    assert ask(bus, QueryLock(1, 1)).board == 1


def test_back_to_back_requests_are_answered_in_order(sim: SimHandle, bus: serial.Serial) -> None:
    reqs = [QueryLock(1, n) for n in range(1, 9)] + [QueryAll(1), QueryAll(2)]
    bus.write(b"".join(encode_request(r) for r in reqs))
    for req in reqs:
        reply = decode_reply(bus.read(reply_length(req)), to=req)
        assert reply.board == req.board


def test_the_bus_survives_an_unplug(fresh_sim: SimHandle) -> None:
    sim = fresh_sim
    with sim.open_serial("lockbus-1") as port:
        ask(port, OpenLock(2, 3))
    sim.post("/devices/lockbus-1/unplug", {"seconds": 0.2})
    wait_until(lambda: (sim.read_devices() or {}).get("lockbus-1", {}).get("path"), 5, "replug")
    with sim.open_serial("lockbus-1") as port:
        # The boards kept their state: only the USB adapter went away.
        assert ask(port, QueryLock(2, 3)) == LockStatus(2, 3, locked=False)
    assert channel(sim, 2, 3)["unlock_count"] == 1
    assert sim.read_devices()["scanner-front"]["path"] is not None
