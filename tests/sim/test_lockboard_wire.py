"""Property tests for the simulated board's own frames (shopgate_sim/lockboard_wire.py),
and for its agreement with the agent's codec over every address: the golden frames pin
what the bytes mean, these show the two independent codecs never drift apart."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from shopgate_sim import lockboard_wire as wire

from agent.devices.protocols import lockboard as lb

boards = st.integers(0, 255)
locks = st.integers(1, wire.LOCKS)
commands = st.one_of(
    st.builds(wire.Command, st.just("open"), boards, locks),
    st.builds(wire.Command, st.just("query"), boards, locks),
    st.builds(wire.Command, st.just("query_all"), boards, st.just(0)),
)
# Noise with no frame head in it, so it cannot swallow the start of a real frame.
noise = st.binary(max_size=12).map(
    lambda b: bytes(x for x in b if x not in (wire.HEAD_OPEN, wire.HEAD_QUERY))
)


def agent_request(cmd: wire.Command) -> lb.Request:
    if cmd.op == "open":
        return lb.OpenLock(cmd.board, cmd.lock)
    if cmd.op == "query":
        return lb.QueryLock(cmd.board, cmd.lock)
    return lb.QueryAll(cmd.board)


@given(commands)
def test_the_board_reads_every_request_the_agent_sends(cmd: wire.Command) -> None:
    frame = lb.encode_request(agent_request(cmd))
    assert wire.read_command(frame) == cmd


@given(commands, st.data())
def test_the_agent_reads_every_reply_the_board_sends(
    cmd: wire.Command, data: st.DataObject
) -> None:
    if cmd.op == "query_all":
        locked = data.draw(st.lists(st.booleans(), min_size=wire.LOCKS, max_size=wire.LOCKS))
        frame = wire.board_reply(cmd.board, locked)
        assert lb.decode_reply(frame, to=agent_request(cmd)) == lb.BoardStatus(
            cmd.board, tuple(locked)
        )
    else:
        is_locked = data.draw(st.booleans())
        frame = wire.lock_reply(cmd, locked=is_locked)
        assert lb.decode_reply(frame, to=agent_request(cmd)) == lb.LockStatus(
            cmd.board, cmd.lock, locked=is_locked
        )
    assert wire.bcc(frame) == 0  # the check byte XORs the frame to 0


@given(commands, st.integers(0, 4), st.integers(1, 255))
def test_any_corrupted_byte_makes_the_frame_no_command(
    cmd: wire.Command, at: int, flip: int
) -> None:
    frame = bytearray(lb.encode_request(agent_request(cmd)))
    frame[at] ^= flip
    assert wire.read_command(bytes(frame)) is None


@given(
    st.lists(st.tuples(noise, commands), max_size=8),
    noise,
    st.lists(st.integers(0, 60), max_size=10),
)
def test_a_stream_cut_anywhere_among_noise_gives_every_command_once(
    items: list[tuple[bytes, wire.Command]], tail: bytes, cuts: list[int]
) -> None:
    stream = b"".join(junk + lb.encode_request(agent_request(c)) for junk, c in items) + tail
    reader = wire.CommandReader()
    out: list[wire.Command | wire.Noise] = []
    bounds = sorted({min(c, len(stream)) for c in cuts})
    for a, b in zip([0, *bounds], [*bounds, len(stream)], strict=True):
        out += reader.feed(stream[a:b])
    assert [x for x in out if isinstance(x, wire.Command)] == [c for _, c in items]
    skipped = b"".join(x.data for x in out if isinstance(x, wire.Noise))
    assert skipped == b"".join(junk for junk, _ in items) + tail  # nothing lost unreported


@given(st.binary(max_size=64), commands)
def test_garbage_never_breaks_the_reader_and_the_next_frame_gets_through(
    junk: bytes, cmd: wire.Command
) -> None:
    reader = wire.CommandReader()
    reader.feed(junk)
    # Whatever the junk left half-read, a few frames later the bus is in step again.
    frame = lb.encode_request(agent_request(cmd))
    out = reader.feed(frame * 3)
    assert cmd in [x for x in out if isinstance(x, wire.Command)]
