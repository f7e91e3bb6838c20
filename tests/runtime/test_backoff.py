"""The one backoff: capped, doubling, jittered within half to all of the step."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from runtime.backoff import Backoff


@given(
    step=st.integers(-5, 10_000),
    lo=st.floats(0.001, 10),
    hi=st.floats(0.001, 1000),
    r=st.floats(0, 1),
)
def test_the_delay_stays_between_half_the_step_and_the_cap(
    step: int, lo: float, hi: float, r: float
) -> None:
    b = Backoff(lo, hi)
    base = Backoff(lo, hi, jitter=False).delay(step)
    assert base <= hi and base == min(hi, lo * 2 ** min(max(step, 0), 64))
    assert base / 2 <= b.delay(step, lambda: r) <= base


def test_it_doubles_until_the_cap() -> None:
    b = Backoff(1, 10, jitter=False)
    assert [b.delay(n) for n in range(6)] == [1, 2, 4, 8, 10, 10]
