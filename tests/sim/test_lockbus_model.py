"""The lock boards' state machine, driven by random command/contact sequences. Its replies
are read back with the agent's codec: the two ends agree on every frame the model sends."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from shopgate_sim.lockboard_wire import Command
from shopgate_sim.lockbus import Board, BoardSpec, Silence, answer

from agent.devices.protocols import lockboard as lb

LOCKER_SLOTS = 12

boards_on_bus = st.sampled_from([1, 2, 3])
commands = st.one_of(
    st.builds(Command, st.just("open"), boards_on_bus, st.integers(1, 24)),
    st.builds(Command, st.just("query"), boards_on_bus, st.integers(1, 24)),
    st.builds(Command, st.just("query_all"), boards_on_bus, st.just(0)),
)
contacts = st.tuples(st.sampled_from([1, 2]), st.integers(1, 24), st.booleans())
steps = st.lists(st.tuples(st.floats(0, 10), st.one_of(commands, contacts)), max_size=60)


def demo_boards() -> dict[int, Board]:
    return {
        1: Board.from_spec(BoardSpec(address=1, release_s=5)),
        2: Board.from_spec(BoardSpec(address=2, channels=LOCKER_SLOTS, compartments=True)),
    }


def as_agent_request(cmd: Command) -> lb.Request:
    if cmd.op == "open":
        return lb.OpenLock(cmd.board, cmd.lock)
    if cmd.op == "query":
        return lb.QueryLock(cmd.board, cmd.lock)
    return lb.QueryAll(cmd.board)


def read(boards: dict[int, Board], cmd: Command, now: float) -> lb.Reply | Silence:
    """The model's reply, as the agent reads it off the wire."""
    reply = answer(boards, cmd, now)
    if isinstance(reply, Silence):
        return reply
    return lb.decode_reply(reply, to=as_agent_request(cmd))


@given(steps)
def test_replies_agree_with_each_other_and_with_the_counts(plan: list) -> None:
    boards = demo_boards()
    opens: dict[tuple[int, int], int] = {}
    now = 0.0
    for dt, step in plan:
        now += dt
        if isinstance(step, tuple):
            board, lock, is_open = step
            if lock in boards[board].channels:
                boards[board].channels[lock].set_contact(is_open, now)
            continue
        reply = read(boards, step, now)
        exists = step.board in boards and (
            step.op == "query_all" or step.lock in boards[step.board].channels
        )
        if not exists:
            assert isinstance(reply, Silence)
            continue
        assert not isinstance(reply, Silence)
        if step.op == "open":
            opens[(step.board, step.lock)] = opens.get((step.board, step.lock), 0) + 1
            if step.board == 2:
                assert reply == lb.LockStatus(2, step.lock, locked=False)  # sprang open
        if step.op == "query_all":
            assert isinstance(reply, lb.BoardStatus)
            for lock in range(1, 25):
                one = read(boards, Command("query", step.board, lock), now)
                if isinstance(one, Silence):
                    assert not reply.is_locked(lock)  # channels the board lacks read clear
                else:
                    assert isinstance(one, lb.LockStatus)
                    assert one.locked == reply.is_locked(lock)
    for address, board in boards.items():
        for lock, ch in board.channels.items():
            assert ch.unlock_count == opens.get((address, lock), 0)


def test_a_door_is_forced_only_when_opened_outside_its_release() -> None:
    ch = demo_boards()[1].channels[1]
    assert ch.set_contact(True, now=0.0) is True
    ch.set_contact(False, now=1.0)
    ch.pulse(now=2.0)
    assert ch.set_contact(True, now=6.9) is False  # within 5 s of the pulse
    ch.set_contact(False, now=8.0)
    assert ch.set_contact(True, now=8.0) is True  # the release ended at 7.0
    assert ch.forced_count == 2 and ch.unlock_count == 1


def test_a_muted_board_neither_acts_nor_answers() -> None:
    boards = demo_boards()
    boards[2].muted = True
    assert isinstance(answer(boards, Command("open", 2, 1), 0.0), Silence)
    assert boards[2].channels[1].unlock_count == 0
    assert boards[2].channels[1].locked
