import datetime as dt

import pytest

from agent.rules.hours import is_open

FRI = dt.datetime(2026, 11, 20)  # a Friday


def at(day: dt.datetime, hhmm: str) -> dt.datetime:
    h, m = map(int, hhmm.split(":"))
    return day.replace(hour=h, minute=m)


@pytest.mark.parametrize(
    ("hhmm", "want"), [("07:59", False), ("08:00", True), ("21:59", True), ("22:00", False)]
)
def test_plain_range(hhmm, want):
    assert is_open(["08:00-22:00"], at(FRI, hhmm)) is want


def test_around_the_clock():
    assert all(is_open(["00:00-24:00"], at(FRI, t)) for t in ("00:00", "12:00", "23:59"))


def test_range_crossing_midnight_belongs_to_the_day_it_started():
    hours = {"fri": ["22:00-02:00"]}
    assert is_open(hours, at(FRI, "23:30"))
    assert is_open(hours, at(FRI + dt.timedelta(days=1), "01:59"))  # Saturday night, Friday's range
    assert not is_open(hours, at(FRI + dt.timedelta(days=1), "02:00"))
    assert not is_open(hours, at(FRI, "01:00"))  # Friday early morning: Thursday had no range
    assert not is_open(hours, at(FRI + dt.timedelta(days=1), "23:00"))


def test_weekly_map_closed_days():
    hours = {"mon": ["09:00-18:00"], "sat": ["10:00-14:00", "15:00-20:00"]}
    assert not is_open(hours, at(FRI, "12:00"))
    sat = FRI + dt.timedelta(days=1)
    assert (
        is_open(hours, at(sat, "10:30"))
        and not is_open(hours, at(sat, "14:30"))
        and is_open(hours, at(sat, "19:00"))
    )
