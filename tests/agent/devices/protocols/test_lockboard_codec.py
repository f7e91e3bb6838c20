"""Property tests for the RS485 lock board codec (CONTRACTS section 6)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from agent.devices.protocols import lockboard as lb

boards = st.integers(0, lb.MAX_BOARD)
locks = st.integers(1, lb.MAX_LOCK)
requests = st.one_of(
    st.builds(lb.OpenLock, boards, locks),
    st.builds(lb.QueryLock, boards, locks),
    st.builds(lb.QueryAll, boards),
)


@st.composite
def request_and_reply(draw: st.DrawFn) -> tuple[lb.Request, lb.Reply]:
    req = draw(requests)
    if isinstance(req, lb.QueryAll):
        flags = draw(st.tuples(*[st.booleans()] * lb.MAX_LOCK))
        return req, lb.BoardStatus(req.board, flags)
    return req, lb.LockStatus(req.board, req.lock, draw(st.booleans()))


def xor_all(frame: bytes) -> int:
    return lb.bcc(frame)


def test_frames_from_the_contract() -> None:
    assert lb.encode_request(lb.OpenLock(1, 1)) == bytes.fromhex("8a 01 01 11 9b")
    assert lb.encode_request(lb.QueryAll(1)) == bytes.fromhex("80 01 00 33 b2")
    reply = bytes.fromhex("80 01 00 00 05 33") + bytes((0x80 ^ 0x01 ^ 0x05 ^ 0x33,))
    status = lb.decode_reply(reply, to=lb.QueryAll(1))
    assert status.is_locked(1) and not status.is_locked(2) and status.is_locked(3)


@given(requests)
def test_request_round_trips_and_xors_to_zero(req: lb.Request) -> None:
    frame = lb.encode_request(req)
    assert len(frame) == lb.REQUEST_LEN
    assert xor_all(frame) == 0
    assert lb.decode_request(frame) == req


@given(request_and_reply())
def test_reply_round_trips_and_xors_to_zero(pair: tuple[lb.Request, lb.Reply]) -> None:
    req, reply = pair
    frame = lb.encode_reply(reply, to=req)
    assert len(frame) == lb.reply_length(req)
    assert xor_all(frame) == 0
    assert lb.decode_reply(frame, to=req) == reply
    assert lb.find_reply(frame, to=req) == (reply, len(frame), b"")


@given(requests, st.data())
def test_any_single_byte_corruption_of_a_request_is_rejected(
    req: lb.Request, data: st.DataObject
) -> None:
    frame = bytearray(lb.encode_request(req))
    i = data.draw(st.integers(0, len(frame) - 1))
    frame[i] ^= data.draw(st.integers(1, 255))
    with pytest.raises(lb.FrameError):
        lb.decode_request(bytes(frame))


@given(request_and_reply(), st.data())
def test_any_single_byte_corruption_of_a_reply_is_rejected(
    pair: tuple[lb.Request, lb.Reply], data: st.DataObject
) -> None:
    req, reply = pair
    frame = bytearray(lb.encode_reply(reply, to=req))
    i = data.draw(st.integers(0, len(frame) - 1))
    frame[i] ^= data.draw(st.integers(1, 255))
    with pytest.raises(lb.FrameError):
        lb.decode_reply(bytes(frame), to=req)
    found, _, _ = lb.find_reply(bytes(frame), to=req)
    assert found is None


# Garbage that cannot start a frame, so it cannot swallow the start of a real one: a
# garbage byte that happened to be a frame head could combine with a real frame's first
# bytes into another valid frame, which no decoder could tell apart.
garbage = st.binary(max_size=12).map(lambda b: bytes(x for x in b if x not in (lb.OPEN, lb.QUERY)))


@given(
    st.lists(st.tuples(garbage, requests), max_size=8),
    garbage,
    st.lists(st.integers(1, 7), min_size=1, max_size=20),
)
def test_request_decoder_finds_every_frame_among_garbage_in_any_chunking(
    items: list[tuple[bytes, lb.Request]], tail: bytes, cuts: list[int]
) -> None:
    stream = b"".join(g + lb.encode_request(r) for g, r in items) + tail
    decoder = lb.RequestDecoder()
    found: list[lb.Request] = []
    skipped = 0
    pos = 0
    cut = iter(cuts * (len(stream) + 1))
    while pos < len(stream):
        n = next(cut)
        for item in decoder.feed(stream[pos : pos + n]):
            if isinstance(item, lb.FrameError):
                skipped += 1
            else:
                found.append(item)
        pos += n
    assert found == [r for _, r in items]
    if any(g for g, _ in items) or tail:
        assert skipped >= 1  # garbage is reported, for the log


@given(st.binary(max_size=64))
def test_request_decoder_never_raises_and_only_yields_valid_requests(data: bytes) -> None:
    for item in lb.RequestDecoder().feed(data):
        if not isinstance(item, lb.FrameError):
            assert lb.decode_request(lb.encode_request(item)) == item


@given(st.binary(max_size=64), requests)
def test_find_reply_never_raises_and_accounts_for_the_bytes(data: bytes, req: lb.Request) -> None:
    reply, consumed, skipped = lb.find_reply(data, to=req)
    assert 0 <= consumed <= len(data)
    assert data[: len(skipped)] == skipped
    if reply is not None:
        assert consumed == len(skipped) + lb.reply_length(req)
        assert lb.decode_reply(data[len(skipped) : consumed], to=req) == reply
    else:
        assert consumed == len(skipped)


@given(garbage, request_and_reply(), st.binary(max_size=8))
def test_find_reply_skips_garbage_before_the_reply(
    noise: bytes, pair: tuple[lb.Request, lb.Reply], after: bytes
) -> None:
    req, reply = pair
    frame = lb.encode_reply(reply, to=req)
    found, consumed, skipped = lb.find_reply(noise + frame + after, to=req)
    assert (found, consumed, skipped) == (reply, len(noise) + len(frame), noise)


@given(request_and_reply(), st.integers(0, 6))
def test_a_partial_reply_waits_for_more_bytes(pair: tuple[lb.Request, lb.Reply], keep: int) -> None:
    req, reply = pair
    frame = lb.encode_reply(reply, to=req)
    assume(keep < len(frame))
    found, consumed, skipped = lb.find_reply(frame[:keep], to=req)
    assert found is None and consumed == 0 and skipped == b""
