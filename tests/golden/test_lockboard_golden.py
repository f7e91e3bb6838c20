"""The lock board's golden frames (tests/golden/lockboard_frames.py, with their sources)
against both codecs: the agent's (it sends requests, reads replies) and the simulator's own
(it reads requests, sends replies). A misreading of the vendor document shared by both
ends passes every round trip, but not these bytes."""

from __future__ import annotations

import pytest
from shopgate_sim import lockboard_wire as wire

from agent.devices.protocols import lockboard as lb
from tests.golden.lockboard_frames import OPEN_ALL, REPLIES, REQUESTS, Reply, Request


def agent_request(v: Request | Reply) -> lb.Request:
    op = v.op if isinstance(v, Request) else v.to
    if op == "open":
        return lb.OpenLock(v.board, v.lock)
    if op == "query":
        return lb.QueryLock(v.board, v.lock)
    return lb.QueryAll(v.board)


def agent_reply(v: Reply) -> lb.Reply:
    if v.to == "query_all":
        return lb.BoardStatus(v.board, tuple(n in v.locked for n in range(1, lb.MAX_LOCK + 1)))
    return lb.LockStatus(v.board, v.lock, locked=v.lock in v.locked)


def ids(vectors: list[Request] | list[Reply]) -> list[str]:
    return [v.name for v in vectors]


@pytest.mark.parametrize("v", REQUESTS, ids=ids(REQUESTS))
def test_the_agent_sends_each_request_byte_for_byte(v: Request) -> None:
    frame = bytes.fromhex(v.hex)
    assert lb.encode_request(agent_request(v)) == frame
    assert lb.decode_request(frame) == agent_request(v)


@pytest.mark.parametrize("v", REPLIES, ids=ids(REPLIES))
def test_the_agent_reads_each_reply_as_documented(v: Reply) -> None:
    frame = bytes.fromhex(v.hex)
    assert lb.decode_reply(frame, to=agent_request(v)) == agent_reply(v)
    assert lb.find_reply(b"\x00" + frame, to=agent_request(v)) == (
        agent_reply(v),
        len(frame) + 1,
        b"\x00",
    )
    assert lb.encode_reply(agent_reply(v), to=agent_request(v)) == frame


@pytest.mark.parametrize("v", REQUESTS, ids=ids(REQUESTS))
def test_the_simulated_board_reads_each_request_as_documented(v: Request) -> None:
    frame = bytes.fromhex(v.hex)
    assert wire.read_command(frame) == wire.Command(v.op, v.board, v.lock)
    # And from a stream, behind a byte of line noise.
    got = wire.CommandReader().feed(b"\x00" + frame)
    assert [c for c in got if isinstance(c, wire.Command)] == [wire.Command(v.op, v.board, v.lock)]


@pytest.mark.parametrize("v", REPLIES, ids=ids(REPLIES))
def test_the_simulated_board_answers_byte_for_byte(v: Reply) -> None:
    frame = bytes.fromhex(v.hex)
    if v.to == "query_all":
        locked = [n in v.locked for n in range(1, wire.LOCKS + 1)]
        assert wire.board_reply(v.board, locked) == frame
    else:
        cmd = wire.Command(v.to, v.board, v.lock)
        assert wire.lock_reply(cmd, locked=v.lock in v.locked) == frame


def test_open_all_is_read_by_neither_side_as_a_single_lock_open() -> None:
    """`8A board 00 11` opens every lock of a board (document section 三); shopgate never
    sends it, and neither codec may take it for an OPEN of some lock."""
    frame = bytes.fromhex(OPEN_ALL.hex)
    with pytest.raises(lb.FrameError):
        lb.decode_request(frame)
    with pytest.raises(lb.FrameError):
        lb.encode_request(lb.OpenLock(OPEN_ALL.board, OPEN_ALL.lock))
    assert wire.read_command(frame) is None
    assert not [c for c in wire.CommandReader().feed(frame) if isinstance(c, wire.Command)]


def test_every_vector_checks_out_by_hand() -> None:
    """The BCC written in each vector is the XOR of the bytes before it (worked out in the
    comments of lockboard_frames.py, checked here without either codec)."""
    for v in [*REQUESTS, *REPLIES, OPEN_ALL]:
        frame = bytes.fromhex(v.hex)
        check = 0
        for b in frame[:-1]:
            check ^= b
        assert frame[-1] == check, v.name
