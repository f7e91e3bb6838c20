"""Business hours: is a door open at a given local time?

Hours are a list of "HH:MM-HH:MM" ranges for every day, or a map mon..sun to such lists.
A range may cross midnight ("22:00-06:00"): its part after midnight belongs to the day it
started, so Friday's "22:00-02:00" keeps the store open until 02:00 on Saturday.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from agent.config.schema import DAYS, parse_time_range

Hours = Sequence[str] | Mapping[str, Sequence[str]]


def _ranges_for(hours: Hours, weekday: int) -> Sequence[str]:
    if isinstance(hours, Mapping):
        return hours.get(DAYS[weekday], ())
    return hours


def _minutes(t: dt.time | None) -> int:
    return 24 * 60 if t is None else t.hour * 60 + t.minute


def is_open(hours: Hours, local: dt.datetime) -> bool:
    now = local.hour * 60 + local.minute
    today = local.weekday()
    for text in _ranges_for(hours, today):
        start, end = parse_time_range(text)
        s, e = _minutes(start), _minutes(end)
        if s < e and s <= now < e:
            return True
        if s > e and now >= s:  # crosses midnight: today's evening part
            return True
    for text in _ranges_for(hours, (today - 1) % 7):
        start, end = parse_time_range(text)
        s, e = _minutes(start), _minutes(end)
        if s > e and now < e:  # yesterday's range, after midnight
            return True
    return False
