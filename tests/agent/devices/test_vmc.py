"""Property tests for the VMC (vending machine controller) codec (CONTRACTS section 6)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.devices.protocols import vmc

packs = st.integers(1, vmc.MAX_PACK)
slots = st.integers(0, vmc.MAX_SLOT)
unknown_cmds = st.integers(0, 255).filter(lambda c: c not in vmc._BODY_LEN)
messages: st.SearchStrategy[vmc.Message] = st.one_of(
    st.just(vmc.Poll()),
    st.just(vmc.Ack()),
    st.builds(vmc.CheckSelection, packs, slots),
    st.builds(vmc.SelectionStatus, packs, st.sampled_from(vmc.SlotState), slots),
    st.builds(vmc.Buy, packs, slots),
    st.builds(vmc.DispenseStatus, packs, st.sampled_from(vmc.DispenseState), slots),
    st.builds(vmc.SetPrice, packs, slots, st.integers(0, vmc.MAX_PRICE_FEN)),
    st.builds(vmc.SetInventory, packs, slots, st.integers(0, vmc.MAX_QTY)),
    st.builds(vmc.Unknown, unknown_cmds, packs, st.binary(max_size=vmc.MAX_UNKNOWN_BODY - 1)),
)
# Noise that cannot contain the start of a frame, so every real frame must come through.
noise = st.binary(max_size=40).map(lambda b: b.replace(b"\xfa", b"\x00"))


def test_frames_from_the_contract() -> None:
    assert vmc.encode(vmc.Poll()) == bytes.fromhex("fa fb 41 00 40")
    assert vmc.encode(vmc.Ack()) == bytes.fromhex("fa fb 42 00 43")
    assert vmc.decode(bytes.fromhex("fa fb 41 00 40")) == vmc.Poll()
    # buy slot 3 as packet 7; dispensing status "jammed" for it as packet 9
    buy = vmc.encode(vmc.Buy(7, 3))
    assert buy[:7] == bytes.fromhex("fa fb 03 03 07 00 03")
    jam = bytes.fromhex("fa fb 04 04 09 03 00 03")
    jam += bytes((vmc.xor(jam),))
    assert vmc.decode(jam) == vmc.DispenseStatus(9, vmc.DispenseState.JAMMED, 3)


def test_packet_numbers_wrap_from_255_to_1() -> None:
    assert vmc.next_pack(1) == 2
    assert vmc.next_pack(255) == 1
    seen = {1}
    pack = 1
    for _ in range(300):
        pack = vmc.next_pack(pack)
        seen.add(pack)
    assert seen == set(range(1, 256))


@given(messages)
def test_round_trip_and_the_check_byte_xors_the_frame_to_zero(msg: vmc.Message) -> None:
    frame = vmc.encode(msg)
    assert frame[:2] == vmc.STX
    assert frame[3] == len(frame) - 5
    assert vmc.xor(frame) == 0
    assert vmc.decode(frame) == msg


@given(messages, st.data())
def test_any_corrupted_byte_is_rejected(msg: vmc.Message, data: st.DataObject) -> None:
    frame = bytearray(vmc.encode(msg))
    i = data.draw(st.integers(0, len(frame) - 1))
    frame[i] ^= data.draw(st.integers(1, 255))
    with pytest.raises(vmc.FrameError):
        vmc.decode(bytes(frame))


@given(st.lists(st.tuples(noise, messages), max_size=8), noise)
def test_garbage_between_frames_is_skipped_and_reported(
    items: list[tuple[bytes, vmc.Message]], tail: bytes
) -> None:
    stream = b"".join(junk + vmc.encode(msg) for junk, msg in items) + tail
    out = vmc.Deframer().feed(stream)
    frames = [vmc.from_frame(f) for f in out if isinstance(f, vmc.Frame)]
    assert frames == [msg for _, msg in items]
    skipped = sum(len(junk) for junk, _ in items) + len(tail)
    errors = [e for e in out if isinstance(e, vmc.FrameError)]
    assert bool(errors) == (skipped > 0)


@given(st.lists(messages, min_size=1, max_size=8), st.data())
def test_split_reads_give_the_same_frames(msgs: list[vmc.Message], data: st.DataObject) -> None:
    stream = b"".join(vmc.encode(m) for m in msgs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    deframer = vmc.Deframer()
    out: list[vmc.Frame | vmc.FrameError] = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out += deframer.feed(stream[a:b])
    assert [vmc.from_frame(f) for f in out] == msgs  # no FrameError either
    assert deframer.pending == 0


@given(
    st.lists(st.tuples(noise, messages), max_size=8),
    noise,
    st.lists(st.integers(0, 400), max_size=10),
)
def test_a_noisy_stream_cut_anywhere_resynchronises_on_every_frame(
    items: list[tuple[bytes, vmc.Message]], tail: bytes, cuts: list[int]
) -> None:
    stream = b"".join(junk + vmc.encode(msg) for junk, msg in items) + tail
    bounds = sorted({min(c, len(stream)) for c in cuts})
    deframer = vmc.Deframer()
    out: list[vmc.Frame | vmc.FrameError] = []
    for a, b in zip([0, *bounds], [*bounds, len(stream)], strict=True):
        out += deframer.feed(stream[a:b])
    assert [vmc.from_frame(f) for f in out if isinstance(f, vmc.Frame)] == [m for _, m in items]
    assert deframer.pending == 0


# Frames with no FA past their start: a corrupted one cannot hide a false start inside.
plain = messages.filter(lambda m: b"\xfa" not in vmc.encode(m)[2:])


@given(plain, messages, st.data())
def test_a_corrupted_frame_is_skipped_and_the_next_one_still_decodes(
    bad: vmc.Message, good: vmc.Message, data: st.DataObject
) -> None:
    frame = bytearray(vmc.encode(bad))
    i = data.draw(st.integers(4, len(frame) - 1))  # a body or check byte: the header stands
    frame[i] ^= data.draw(st.integers(1, 255).filter(lambda x: frame[i] ^ x != 0xFA))
    out = vmc.Deframer().feed(bytes(frame) + vmc.encode(good))
    frames = [vmc.from_frame(f) for f in out if isinstance(f, vmc.Frame)]
    assert frames == [good]
    assert isinstance(out[0], vmc.FrameError)


@given(st.binary(max_size=300), st.data())
def test_arbitrary_bytes_never_crash_and_a_poll_after_them_gets_through(
    junk: bytes, data: st.DataObject
) -> None:
    deframer = vmc.Deframer()
    cut = data.draw(st.integers(0, len(junk)))
    out = deframer.feed(junk[:cut]) + deframer.feed(junk[cut:])
    assert all(isinstance(x, vmc.Frame | vmc.FrameError) for x in out)
    # A stuck partial header holds back at most one short unknown frame's worth.
    assert deframer.pending <= vmc.HEADER_LEN + vmc.MAX_UNKNOWN_BODY
    polls = vmc.encode(vmc.Poll()) * 5
    later = deframer.feed(polls)
    assert any(isinstance(x, vmc.Frame) and x.cmd == vmc.CMD_POLL for x in later)


def test_a_garbage_header_with_an_impossible_length_is_skipped_at_once() -> None:
    out = vmc.Deframer().feed(bytes.fromhex("fa fb 03 40") + vmc.encode(vmc.Poll()))
    assert isinstance(out[0], vmc.FrameError)
    assert out[1:] == [vmc.Frame(vmc.CMD_POLL)]


def test_bad_field_values_are_frame_errors() -> None:
    with pytest.raises(vmc.FrameError, match="dispensing status 05"):
        vmc.from_frame(vmc.Frame(vmc.CMD_DISPENSE, bytes((1, 5, 0, 1))))
    with pytest.raises(vmc.FrameError, match="packNo 0"):
        vmc.from_frame(vmc.Frame(vmc.CMD_BUY, bytes((0, 0, 1))))
    with pytest.raises(vmc.FrameError, match="slot"):
        vmc.encode(vmc.Buy(1, 70000))
