"""Locker config: each problem an installer can make is named with its line and key."""

from __future__ import annotations

from collections.abc import Callable

from tests.agent.config.config_files import BASE, edit

Problems = Callable[..., list[str]]

# BASE has lock bus `bus` with board 1 (the front door on channel 1) and scanner `scan`.
TWO_BOARDS = edit(BASE, "boards: [1]", "boards: [1, 2]")


def lockers(*entries: str) -> str:
    return TWO_BOARDS + "lockers:\n" + "".join(entries)


def locker(extra: str = "", *, id: str = "l1", board: int = 2, device: str = "bus") -> str:
    return f"  - {{id: {id}, device: {device}, board: {board}, slots: 4{extra}}}\n"


def test_a_locker_on_its_own_board_is_fine(problems: Problems) -> None:
    contents = ", contents: [{slot: 1, barcode: '6901028075022', stock: 2}]"
    assert problems(lockers(locker(contents + ", open_timeout_seconds: 2"))) == []


def test_the_device_must_be_a_lock_bus_with_that_board(problems: Problems) -> None:
    # the first locker is on line 27 of the file
    assert problems(lockers(locker(device="bux"))) == [
        "27: lockers.0.device: no device 'bux' (lock buses: bus)"
    ]
    assert problems(lockers(locker(device="scan"))) == [
        "27: lockers.0.device: device 'scan' is a scanner, not a lockbus"
    ]
    assert problems(lockers(locker(board=3))) == [
        "27: lockers.0.board: board 3 is not on bus 'bus' (boards: [1, 2])"
    ]


def test_a_locker_may_not_take_a_doors_channel(problems: Problems) -> None:
    assert problems(lockers(locker(board=1))) == [
        "27: lockers.0.board: slot 1 is channel 1 of board 1 on 'bus', which door 'front' "
        "already uses"
    ]
    # Channels 2-5 of the door's board are free.
    assert problems(lockers(locker(", first_channel: 2", board=1))) == []


def test_two_lockers_may_not_share_channels(problems: Problems) -> None:
    first = locker()
    overlapping = locker(", first_channel: 4", id="l2")
    after = locker(", first_channel: 5", id="l2")
    assert problems(lockers(first, overlapping)) == [
        "28: lockers.1.board: slot 1 is channel 4 of board 2 on 'bus', which locker 'l1' "
        "already uses"
    ]
    assert problems(lockers(first, after)) == []
    assert problems(lockers(first, locker(", first_channel: 9"))) == [
        "28: lockers.1.id: duplicate locker id 'l1'"
    ]


def test_slots_and_contents_must_fit_the_board(problems: Problems) -> None:
    [p] = problems(lockers(locker(", first_channel: 22")))
    assert p.startswith("27: lockers.0: ") and "end at channel 25" in p
    [p] = problems(lockers(locker(", contents: [{slot: 5, barcode: '1'}]")))
    assert "slot 5 is past the last slot (4)" in p
    [p] = problems(
        lockers(locker(", contents: [{slot: 2, barcode: '1'}, {slot: 2, barcode: '2'}]"))
    )
    assert "slot 2 is listed twice" in p
    [p] = problems(lockers(locker(", contents: [{slot: 1, barcode: '1', stock: -1}]")))
    assert "lockers.0.contents.0.stock" in p
