"""When a guesser must pause: a pure rule over the times of recent wrong answers."""

from __future__ import annotations

import datetime as dt


def paused_until(
    newest_first: list[dt.datetime], max_wrong: int, window: dt.timedelta
) -> dt.datetime | None:
    """Given the wrong answers of the last `window` (newest first), the time until which
    answering is paused, or None. Paused while `max_wrong` of them are in the window:
    until the `max_wrong`-th newest leaves it."""
    if max_wrong < 1:
        raise ValueError("max_wrong must be at least 1")
    if len(newest_first) < max_wrong:
        return None
    return newest_first[max_wrong - 1] + window


def tries_left(newest_first: list[dt.datetime], max_wrong: int) -> int:
    return max(0, max_wrong - len(newest_first))
