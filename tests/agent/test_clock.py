from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from agent.clock import Clock, ClockAnchor, format_rfc3339

T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z
LEAD = 60.0  # the clock's max_unconfirmed (its default)
YEAR = 365 * 86400.0


class FakeTime:
    """The two OS clocks a Clock reads, settable, and the boot it runs in."""

    def __init__(self, wall: float = T0, mono: float = 500.0, boot: str = "boot-1") -> None:
        self.wall_now, self.mono_now, self.boot = wall, mono, boot

    def wall(self) -> float:
        return self.wall_now

    def mono(self) -> float:
        return self.mono_now

    def advance(self, seconds: float) -> None:
        self.wall_now += seconds
        self.mono_now += seconds

    def reboot(self, wall: float) -> None:
        self.wall_now, self.mono_now, self.boot = wall, 3.0, self.boot + "'"

    def clock(self, lkg: float | None = None) -> Clock:
        return Clock(lkg, wall=self.wall, mono=self.mono, boot_id=lambda: self.boot)


def statuses(clock: Clock) -> list[tuple[str, str]]:
    return [(j.direction, j.status) for j in clock.take_jumps()]


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
        "status": "refused",
    }
    assert clock.take_jumps() == []  # recorded once, not on every reading

    t.wall_now = T0 + 3600  # NTP answers: an hour later than the saved time. Held...
    assert clock.now() == T0 + 5 + LEAD
    [jump] = clock.take_jumps()
    assert (jump.direction, jump.status, jump.accepted) == ("forward", "held", False)
    t.advance(1)
    assert clock.now() == T0 + 6 + LEAD
    assert clock.take_jumps() == []

    # ...until the hub's time agrees: a pass minted 20 s ago, say.
    assert clock.observe_signed_time(T0 + 3600 + 1 - 20, "pass")
    assert clock.now() == T0 + 3601
    [jump] = clock.take_jumps()
    assert jump.to_data() == {
        "from": format_rfc3339(T0 + 6 + LEAD),
        "to": format_rfc3339(T0 + 3601),
        "direction": "forward",
        "accepted": True,
        "status": "confirmed",
        "source": "pass",
    }


def test_a_wall_clock_set_back_is_refused_until_it_catches_up() -> None:
    t = FakeTime()
    clock = t.clock()
    t.advance(100)
    assert clock.now() == T0 + 100
    t.wall_now -= 3600  # someone sets the clock back an hour to replay an expired pass
    assert clock.now() == T0 + 100
    t.advance(1)
    assert clock.now() == T0 + 101
    assert statuses(clock) == [("backward", "refused")]
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


def test_a_spoofed_ntp_jump_moves_the_clock_by_the_allowance_at_most() -> None:
    t = FakeTime()
    clock = t.clock(lkg=T0)
    clock.observe_signed_time(T0, "command")  # settled
    t.wall_now += 10 * YEAR
    assert clock.now() == T0 + LEAD
    assert statuses(clock) == [("forward", "held")]
    for _ in range(100):  # nudged on and on: no ratchet
        t.wall_now += 1.9
        t.mono_now += 1.0
        clock.now()
    assert clock.now() == T0 + 100 + LEAD
    # The spoofer's own clock is no hub: a signed time far from both is not believed.
    assert not clock.observe_signed_time(T0 + 5 * YEAR, "pass")
    assert clock.now() == T0 + 100 + LEAD
    assert clock.doubts_before() is None


def test_an_ntp_step_within_the_allowance_is_followed() -> None:
    t = FakeTime()
    clock = t.clock()
    t.wall_now += 30  # a Pi that ran half a minute slow, put right
    assert clock.now() == T0 + 30
    assert statuses(clock) == [("forward", "accepted")]


def test_after_a_reboot_tokens_signed_before_the_saved_time_are_in_doubt_until_settled() -> None:
    t = FakeTime()
    clock = t.clock()
    clock.observe_signed_time(T0, "pass")
    t.advance(100)
    saved, anchor = clock.now(), clock.anchor()
    t.reboot(wall=T0 + 100)  # off for hours; fake-hwclock restores the saved time
    clock = t.clock()
    clock.restore(saved, anchor)
    assert clock.now() == T0 + 100
    assert clock.doubts_before() == T0 + 100
    # A signed time from before the reboot says nothing new.
    assert clock.observe_signed_time(T0 + 50, "pass")
    assert clock.doubts_before() == T0 + 100
    # The hub's time hours later: believed however far ahead (the time off is unknown).
    assert clock.observe_signed_time(T0 + 7200, "pass")
    assert clock.now() == T0 + 7200
    assert clock.doubts_before() is None
    advanced, behind = clock.take_jumps()
    assert (advanced.status, advanced.source, advanced.wall) == ("advanced", "pass", T0 + 7200)
    assert (behind.status, behind.wall) == ("refused", T0 + 100)  # the wall clock is wrong
    # Settled: a signed time far ahead is no longer believed.
    assert not clock.observe_signed_time(T0 + YEAR, "pass")


def test_a_restart_of_the_agent_alone_carries_the_confirmed_time_on() -> None:
    t = FakeTime()
    clock = t.clock()
    clock.observe_signed_time(T0, "command")
    saved, anchor = clock.now(), clock.anchor()
    t.advance(600)  # the agent was stopped for ten minutes; the Pi ran on
    clock = t.clock()
    clock.restore(saved, anchor)
    assert clock.now() == T0 + 600
    assert clock.doubts_before() is None
    assert clock.take_jumps() == []  # ten minutes off is no jump


def test_a_monotonic_clock_that_went_back_is_a_reboot_whatever_the_boot_id() -> None:
    t = FakeTime()
    clock = t.clock()
    saved, anchor = clock.now(), clock.anchor()
    t.mono_now = 1.0
    clock = t.clock()
    clock.restore(saved, anchor)
    assert clock.doubts_before() == saved


def test_the_anchor_round_trips_and_a_bad_one_reads_as_none() -> None:
    a = ClockAnchor("b", T0, 12.5, None, False)
    assert ClockAnchor.from_json(a.to_json()) == a
    b = ClockAnchor(None, T0, 12.5, T0 - 1, True)
    assert ClockAnchor.from_json(b.to_json()) == b
    for bad in (None, "", "{", "[]", '{"boot_id": "b"}', a.to_json().replace("12.5", "NaN")):
        assert ClockAnchor.from_json(bad) is None


def test_the_anchor_is_handed_out_when_it_changed() -> None:
    t = FakeTime()
    clock = t.clock()
    assert clock.take_anchor() is not None  # the first one
    assert clock.take_anchor() is None
    clock.observe_signed_time(T0, "pass")  # settles a fresh clock
    assert clock.take_anchor() is not None
    t.advance(1000)
    clock.observe_signed_time(T0 + 1000, "pass")  # what the monotonic clock said already
    assert clock.take_anchor() is None
    t.wall_now += 30  # NTP puts the Pi right; the hub agrees
    clock.observe_signed_time(T0 + 1030, "pass")
    assert clock.take_anchor() is not None


def test_last_known_good_in_the_past_holds_the_wall_clock_until_the_hub_confirms() -> None:
    t = FakeTime()
    clock = t.clock(lkg=T0 - 86400)  # powered off for a day, or NTP spoofed a day ahead
    assert clock.now() == T0 - 86400 + LEAD
    assert clock.observe_signed_time(T0 - 30, "order_sync")
    assert clock.now() == T0


# --- properties ---------------------------------------------------------------------

Step = tuple[float, float, float | None]  # (wall step, elapsed, signed time offset or None)

steps = st.lists(
    st.tuples(
        st.one_of(st.just(0.0), st.floats(-1e9, 1e9), st.floats(-100, 100)),
        st.floats(0, 1e4),
        st.one_of(st.none(), st.floats(-1e9, 1e9), st.floats(-200, 200)),
    ),
    max_size=40,
)


@given(steps, st.booleans())
def test_never_runs_backward_nor_past_what_is_confirmed(seq: list[Step], reboot: bool) -> None:
    """Whatever the wall clock does and whatever signed times arrive: the clock never
    goes back, and never runs further ahead of the latest proven time (saved or signed,
    plus the monotonic time since) than the allowance."""
    t = FakeTime()
    clock = t.clock()
    clock.observe_signed_time(T0, "pass")  # settled at T0
    if reboot:
        saved = clock.now()
        t.reboot(wall=T0 - 3600)
        clock = t.clock(lkg=saved)
    proofs = [(T0, t.mono_now)]
    last = clock.now()
    assert last >= T0
    for wall_step, elapsed, signed in seq:
        t.wall_now += wall_step + elapsed
        t.mono_now += elapsed
        if signed is not None:
            clock.observe_signed_time(last + signed, "pass")
            proofs.append((last + signed, t.mono_now))
        now = clock.now()
        assert now >= last
        proven = max(p + (t.mono_now - m) for p, m in proofs)
        assert now <= proven + LEAD + 1e-6
        last = now


@given(
    st.lists(st.tuples(st.floats(-1e9, 1e9), st.floats(0, 1e4)), max_size=40),
)
def test_never_follows_an_unconfirmed_forward_jump(seq: list[tuple[float, float]]) -> None:
    """With no signed time at all, NTP (or whoever sets the wall clock) moves the agent's
    time at most the allowance ahead of where the monotonic clock carries it."""
    t = FakeTime()
    clock = t.clock(lkg=T0)
    start = t.mono_now
    for wall_step, elapsed in seq:
        t.wall_now += wall_step + elapsed
        t.mono_now += elapsed
        assert clock.now() <= T0 + (t.mono_now - start) + LEAD + 1e-6


@given(
    st.floats(-1e8, 1e8),
    st.floats(0, 1e5),
    st.floats(0, LEAD / 2),
    st.booleans(),
)
def test_a_jump_the_hub_agrees_with_is_followed(
    boot_wall_offset: float, off_for: float, age: float, rebooted: bool
) -> None:
    """Liveness: when the wall clock is right and a fresh hub-signed time agrees with it
    (a pass minted `age` seconds ago), the agent runs on the wall clock again, however
    far it had to move."""
    t = FakeTime()
    clock = t.clock()
    clock.observe_signed_time(T0, "pass")
    saved, anchor = clock.now(), clock.anchor()
    real = T0 + off_for
    if rebooted:
        t.reboot(wall=T0 + boot_wall_offset)  # whatever the Pi's wall clock says at boot
    else:
        t.mono_now += off_for  # only the agent was off; the Pi ran on
    clock = t.clock()
    clock.restore(saved, anchor)
    t.wall_now = real  # NTP answers, rightly
    clock.now()
    clock.observe_signed_time(real - age, "pass")
    # Never left behind; ahead only if it had run ahead before NTP answered, and then by
    # the allowance at most.
    assert real - 1e-6 <= clock.now() <= real + LEAD


@given(st.floats(0, 7_258_118_400.0))  # 1970 to 2200: float ms precision holds there
def test_rfc3339_with_milliseconds(t: float) -> None:
    text = format_rfc3339(t)
    assert len(text) == 24 and text.endswith("Z")
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert 0 <= t - parsed.timestamp() < 0.001 + 1e-6 * max(1.0, t / 1e9)
