"""Event batches as agents post them (CONTRACTS section 4), checked field by field.

`parse_batch` is all or nothing: it returns every event of the batch, or raises BadBatch
naming the first bad event's index and field, so the hub stores nothing from a batch it
cannot take whole, and the agent learns which event to set aside. Fields beyond the six of
the envelope are kept: the hub gives each event back exactly as it came.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from cloud.db.times import utc_text

MAX_ID_LENGTH = 128
MAX_SEQ = 2**63 - 1  # the database's BIGINT
_ID = re.compile(rf"[\x21-\x7e]{{1,{MAX_ID_LENGTH}}}")  # printable ASCII, no spaces
_TYPE = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})"
)


class BadBatch(ValueError):
    """A batch the hub refuses whole. `index`/`field` locate the first bad event, when the
    problem is in one event rather than in the body as a whole."""

    def __init__(
        self,
        message: str,
        *,
        index: int | None = None,
        field: str | None = None,
        event_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.index = index
        self.field = field
        self.event_id = event_id

    @property
    def code(self) -> str:
        return "bad_event" if self.index is not None else "bad_body"


@dataclass(frozen=True, slots=True)
class Envelope:
    id: str
    store: str
    seq: int
    ts: str  # normalised: RFC 3339 UTC with microseconds, sortable as text
    type: str
    json: str  # the event as the agent sent it, compact JSON


def parse_batch(body: bytes, store: str) -> list[Envelope]:
    """The events of a `{"events": [...]}` body for `store`, or BadBatch."""
    try:
        doc = json.loads(body, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise BadBatch("the body is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise BadBatch(f"the body is not JSON ({e.msg} at line {e.lineno} col {e.colno})") from None
    except ValueError as e:  # NaN/Infinity, or an integer too long to read
        raise BadBatch(f"the body is not valid JSON ({e})") from None
    except RecursionError:
        raise BadBatch("the body is nested too deeply") from None
    if not isinstance(doc, dict):
        raise BadBatch(f'the body must be a JSON object {{"events": [...]}}, not {_kind(doc)}')
    events = doc.get("events")
    if not isinstance(events, list):
        what = "missing" if "events" not in doc else f"{_kind(events)}, not a list"
        raise BadBatch(f'"events" is {what}; the body is {{"events": [...]}}')
    return [check_event(event, i, store) for i, event in enumerate(events)]


def check_event(event: Any, index: int, store: str) -> Envelope:
    """One event's envelope, checked in field order (id, store, seq, ts, type, data)."""
    if not isinstance(event, dict):
        raise BadBatch(f"events[{index}] must be an object, not {_kind(event)}", index=index)
    raw_id = event.get("id")
    event_id = raw_id if isinstance(raw_id, str) else None

    def bad(field: str, message: str) -> BadBatch:
        where = f"events[{index}].{field}"
        return BadBatch(f"{where}: {message}", index=index, field=field, event_id=event_id)

    if "id" not in event:
        raise bad("id", "missing")
    if not isinstance(raw_id, str) or not _ID.fullmatch(raw_id):
        raise bad(
            "id", f"must be text of 1 to {MAX_ID_LENGTH} printable ASCII characters, no spaces"
        )
    if event.get("store") != store:
        got = _show(event.get("store")) if "store" in event else "missing"
        raise bad("store", f"must be {store!r} (the store in the URL), got {got}")
    seq = event.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 < seq <= MAX_SEQ:
        got = _show(seq) if "seq" in event else "missing"
        raise bad("seq", f"must be a whole number more than 0, got {got}")
    ts = event.get("ts")
    normalised = normalise_rfc3339(ts) if isinstance(ts, str) else None
    if normalised is None:
        got = _show(ts) if "ts" in event else "missing"
        raise bad("ts", f"must be an RFC 3339 time like 2025-01-31T08:00:00Z, got {got}")
    type_ = event.get("type")
    if not isinstance(type_, str) or not _TYPE.fullmatch(type_):
        got = _show(type_) if "type" in event else "missing"
        raise bad("type", f"must be an event type like door.opened, got {got}")
    if not isinstance(event.get("data"), dict):
        got = _kind(event["data"]) if "data" in event else "missing"
        raise bad("data", f"must be an object, got {got}")
    text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return Envelope(raw_id, store, seq, normalised, type_, text)


def normalise_rfc3339(text: str) -> str | None:
    """RFC 3339 `text` as UTC with microseconds ("2025-01-31T00:00:00.000000Z"), or None."""
    m = _RFC3339.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    micros = int((m[7] or "0")[:6].ljust(6, "0"))
    zone = m[8]
    if second > 60:
        return None
    try:
        if zone in ("Z", "z"):
            tz = dt.UTC
        else:
            sign = 1 if zone[0] == "+" else -1
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            if hours > 23 or minutes > 59:
                return None
            tz = dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
        # A leap second (:60) is read as the last moment of its minute.
        when = dt.datetime(year, month, day, hour, minute, min(second, 59), micros, tz)
        return utc_text(when)
    except (ValueError, OverflowError):
        return None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "text", bool: "true/false"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, int | float) else "a value")


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, dict | list) or value is None:
        return _kind(value)
    return json.dumps(value)
