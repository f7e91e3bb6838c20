"""Times as the hub stores them: RFC 3339 UTC text with microseconds, which sorts as text
and reads the same on SQLite and PostgreSQL ("2025-01-02T03:04:05.000006Z")."""

from __future__ import annotations

import datetime as dt


def utc_text(when: dt.datetime) -> str:
    utc = when.astimezone(dt.UTC)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond:06d}Z"
    )


def now_text() -> str:
    return utc_text(dt.datetime.now(dt.UTC))
