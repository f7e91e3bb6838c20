"""The escalating pickup-code pauses (agent/rules/lockout.py), with the time given."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.rules.lockout import CLEAR, Lockout, LockoutPolicy, forget_if_quiet, record_failure

POLICY = LockoutPolicy(attempts=5, pause_s=60, max_pause_s=3600, reset_after_s=6 * 3600)
T0 = 1_800_000_000.0


def guess(state: Lockout, now: float, policy: LockoutPolicy = POLICY) -> tuple[Lockout, bool]:
    """What the door service does with a wrong code at `now`: refused during a pause
    (not looked up, not counted), else counted. (state, looked up?)"""
    if state.paused(now):
        return state, False
    return record_failure(state, policy, now).state, True


def test_the_fifth_wrong_code_starts_a_minute_then_each_one_doubles_up_to_an_hour():
    state, t, pauses = CLEAR, T0, []
    for _ in range(4):
        failed = record_failure(state, POLICY, t)
        assert failed.pause_s is None
        state, t = failed.state, t + 1
    for _ in range(9):
        failed = record_failure(state, POLICY, t)
        assert failed.pause_s is not None
        pauses.append(failed.pause_s)
        state = failed.state
        assert state.paused(t) and state.paused(t + failed.pause_s - 0.001)
        t += failed.pause_s  # the next guess as soon as the pause is over
        assert not state.paused(t)
    assert pauses == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    assert state.total == 4 + 9 and state.level == 9


def test_slow_guessing_is_still_a_streak():
    """One wrong code every 59 minutes: under any per-minute limit, but a streak."""
    state = CLEAR
    for i in range(4):
        state = record_failure(state, POLICY, T0 + i * 3540).state
    assert record_failure(state, POLICY, T0 + 4 * 3540).pause_s == 60


def test_a_quiet_spell_forgets_the_streak_and_its_pauses():
    state = CLEAR
    for i in range(5):
        state = record_failure(state, POLICY, T0 + i).state
    assert state.level == 1 and state.until == T0 + 4 + 60
    # Quiet for 6 h counted from the end of the pause: forgotten.
    assert forget_if_quiet(state, POLICY, state.until + 6 * 3600 - 1) == state
    assert forget_if_quiet(state, POLICY, state.until + 6 * 3600) == CLEAR
    failed = record_failure(state, POLICY, state.until + 6 * 3600)
    assert failed.pause_s is None and failed.state.wrong == 1 and failed.state.level == 0


def test_a_pause_is_never_forgotten_while_it_runs():
    long = LockoutPolicy(attempts=1, pause_s=10, max_pause_s=10 * 3600, reset_after_s=60)
    state = record_failure(CLEAR, long, T0).state
    state = record_failure(state, long, state.until).state  # 20 s
    state = record_failure(state, long, state.until).state  # 40 s
    assert forget_if_quiet(state, long, state.until - 1) == state


# Gaps between tries: a burst (0), around a pause's length, or hours (never 6 h: a
# quiet spell that long is allowed to forget the streak).
GAPS = st.one_of(
    st.just(0.0), st.floats(min_value=0, max_value=300), st.floats(min_value=0, max_value=3 * 3600)
)


@given(
    gaps=st.lists(GAPS, min_size=1, max_size=60),
    attempts=st.integers(min_value=1, max_value=8),
)
def test_no_schedule_of_guesses_beats_the_bound(gaps: list[float], attempts: int) -> None:
    """Whatever the times of a guesser's tries (none quiet long enough to be forgotten),
    the tries looked up by time T number at most `attempts` plus the pauses that fit in
    T: the k-th guess after the first `attempts` comes after k pauses of the streak."""
    policy = LockoutPolicy(attempts=attempts, pause_s=60, max_pause_s=3600, reset_after_s=6 * 3600)
    state, t, looked_up = CLEAR, T0, 0
    first = None
    for gap in gaps:
        t += gap
        state, counted = guess(state, t, policy)
        if counted:
            looked_up += 1
            first = t if first is None else first
    assert first is not None
    fit, spent = 0, 0.0
    while spent + policy.pause_for(fit) <= t - first:
        spent += policy.pause_for(fit)
        fit += 1
    assert looked_up <= attempts + fit


@given(
    st.builds(
        Lockout,
        st.integers(0, 100),
        st.integers(0, 1000),
        st.integers(0, 60),
        st.floats(0, 4e9),
        st.floats(0, 4e9),
    )
)
def test_a_saved_state_reads_back_the_same(state: Lockout) -> None:
    assert Lockout.from_json(state.to_json()) == state


@pytest.mark.parametrize(
    "raw",
    [None, [], {"wrong": -1}, {"level": "2"}, {"until": "soon"}, {"wrong": True}],
)
def test_a_damaged_state_is_refused_with_the_reason(raw: object) -> None:
    with pytest.raises(ValueError, match=r"lockout|count|time"):
        Lockout.from_json(raw)
