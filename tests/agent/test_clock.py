from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from agent.clock import Clock, format_rfc3339

T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z


class FakeTime:
    """The two OS clocks a Clock reads, settable."""

    def __init__(self, wall: float = T0, mono: float = 500.0) -> None:
        self.wall_now, self.mono_now = wall, mono

    def wall(self) -> float:
        return self.wall_now

    def mono(self) -> float:
        return self.mono_now

    def advance(self, seconds: float) -> None:
        self.wall_now += seconds
        self.mono_now += seconds

    def clock(self, lkg: float | None = None) -> Clock:
        return Clock(lkg, wall=self.wall, mono=self.mono)


def test_follows_the_wall_clock() -> None:
    t = FakeTime()
    clock = t.clock()
    assert clock.now() == T0
    t.advance(10.5)
    assert clock.now() == T0 + 10.5
    t.wall_now += 1.0  # NTP nudging within the threshold is followed, not a jump
    assert clock.now() == T0 + 11.5
    assert clock.take_jumps() == []


def test_booting_behind_the_last_known_good_time_runs_on_from_it() -> None:
    t = FakeTime(wall=0.0)  # a Pi without RTC believes it is 1970
    clock = t.clock(lkg=T0)
    assert clock.now() == T0
    t.advance(5)
    assert clock.now() == T0 + 5  # the monotonic clock carries it forward
    [jump] = clock.take_jumps()
    assert (jump.direction, jump.accepted) == ("backward", False)
    assert jump.to_data() == {
        "from": format_rfc3339(T0),
        "to": "1970-01-01T00:00:00.000Z",
        "direction": "backward",
        "accepted": False,
    }
    assert clock.take_jumps() == []  # recorded once, not on every reading

    t.wall_now = T0 + 3600  # NTP syncs: a forward jump, accepted
    assert clock.now() == T0 + 3600
    [jump] = clock.take_jumps()
    assert (jump.direction, jump.accepted) == ("forward", True)
    assert jump.before == T0 + 5 and jump.wall == T0 + 3600


def test_a_wall_clock_set_back_is_refused_until_it_catches_up() -> None:
    t = FakeTime()
    clock = t.clock()
    t.advance(100)
    assert clock.now() == T0 + 100
    t.wall_now -= 3600  # someone sets the clock back an hour to replay an expired pass
    assert clock.now() == T0 + 100
    t.advance(1)
    assert clock.now() == T0 + 101
    [jump] = clock.take_jumps()
    assert (jump.direction, jump.accepted) == ("backward", False)
    t.wall_now -= 600  # set back further: recorded again
    assert clock.now() == T0 + 101
    assert len(clock.take_jumps()) == 1
    t.wall_now = T0 + 101.5  # put right again: followed silently
    assert clock.now() == T0 + 101.5
    assert clock.take_jumps() == []


def test_a_small_step_back_holds_still_instead_of_going_backward() -> None:
    t = FakeTime()
    clock = t.clock()
    t.advance(1)
    assert clock.now() == T0 + 1
    t.wall_now -= 1.5
    assert clock.now() == T0 + 1
    assert clock.take_jumps() == []


def test_last_known_good_in_the_past_changes_nothing() -> None:
    t = FakeTime()
    clock = t.clock(lkg=T0 - 86400)  # powered off for a day
    assert clock.now() == T0
    assert clock.take_jumps() == []


@given(st.lists(st.tuples(st.floats(-1e5, 1e5), st.floats(0, 1e3)), max_size=50))
def test_never_runs_backward_whatever_the_wall_clock_does(steps: list[tuple[float, float]]) -> None:
    t = FakeTime()
    clock = t.clock(lkg=T0 + 50)
    last = clock.now()
    assert last >= T0 + 50
    for wall_step, elapsed in steps:
        t.wall_now += wall_step + elapsed
        t.mono_now += elapsed
        now = clock.now()
        assert now >= last
        last = now


@given(st.floats(0, 7_258_118_400.0))  # 1970 to 2200: float ms precision holds there
def test_rfc3339_with_milliseconds(t: float) -> None:
    text = format_rfc3339(t)
    assert len(text) == 24 and text.endswith("Z")
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert 0 <= t - parsed.timestamp() < 0.001 + 1e-6 * max(1.0, t / 1e9)
