"""State changes the journal applies in the same transaction as the events they go with.

Each op is a frozen dataclass that checks its fields when made and turns itself into one
SQL statement (`statement(ts)`, with `ts` the batch's RFC 3339 time). Journal.append
builds the statements before queueing, so a bad op fails in the caller, not in a batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple


class Statement(NamedTuple):
    sql: str
    params: tuple[Any, ...]
    # The op is about a row that must exist: changing no row is a `not_found` error.
    must_match: str | None = None


# Made once: json.dumps() with options builds a new encoder on every call. ASCII only:
# a lone surrogate in a string then stays an escape instead of failing in the writer.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def to_json(value: Any) -> str:
    """Compact JSON; raises TypeError/ValueError for what JSON cannot hold (NaN too)."""
    return _ENCODER.encode(value)


def _required_str(obj: dict[str, Any], key: str, what: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} needs a non-empty string {key!r}, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class UsePass:
    """Mark a once-only token used (a pass's jti, or jti:order for pickup passes).

    Using the same token twice is a `conflict`, and the events appended with it are not
    written: the journal itself refuses a replay that slipped past the caller's check.
    """

    jti: str
    exp: float

    def statement(self, ts: str) -> Statement:
        return Statement("INSERT INTO used_passes (jti, exp) VALUES (?, ?)", (self.jti, self.exp))


@dataclass(frozen=True, slots=True)
class ForgetPass:
    """Give a once-only token back: its grant never took effect (the lock did not open),
    so the person may try again."""

    jti: str

    def statement(self, ts: str) -> Statement:
        return Statement("DELETE FROM used_passes WHERE jti = ?", (self.jti,))


@dataclass(frozen=True, slots=True)
class PutOrder:
    """Insert or replace an order (keyed by order["id"])."""

    order: dict[str, Any]

    def __post_init__(self) -> None:
        _required_str(self.order, "id", "an order")
        _required_str(self.order, "status", "an order")

    def statement(self, ts: str) -> Statement:
        code = self.order.get("pickup_code")
        return Statement(
            "INSERT INTO orders (id, status, pickup_code, body, updated_ts) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
            " pickup_code = excluded.pickup_code, body = excluded.body,"
            " updated_ts = excluded.updated_ts",
            (
                self.order["id"],
                self.order["status"],
                None if code is None else str(code),
                to_json(self.order),
                ts,
            ),
        )


@dataclass(frozen=True, slots=True)
class SetOrderStatus:
    """Change an order's status (in its column and in its JSON body alike)."""

    order_id: str
    status: str

    def statement(self, ts: str) -> Statement:
        return Statement(
            "UPDATE orders SET status = ?, body = json_set(body, '$.status', ?), updated_ts = ?"
            " WHERE id = ?",
            (self.status, self.status, ts, self.order_id),
            must_match=f"no order {self.order_id!r}",
        )


@dataclass(frozen=True, slots=True)
class PutSetting:
    """Set a setting that must survive restarts (business status, lockdown, keys...)."""

    key: str
    value: Any

    def statement(self, ts: str) -> Statement:
        return Statement(
            "INSERT INTO settings (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (self.key, to_json(self.value)),
        )


@dataclass(frozen=True, slots=True)
class PutProduct:
    """Insert or replace a catalogue product (keyed by product["barcode"])."""

    product: dict[str, Any]

    def __post_init__(self) -> None:
        _required_str(self.product, "barcode", "a product")

    def statement(self, ts: str) -> Statement:
        return Statement(
            "INSERT INTO products (barcode, body) VALUES (?, ?)"
            " ON CONFLICT (barcode) DO UPDATE SET body = excluded.body",
            (self.product["barcode"], to_json(self.product)),
        )


@dataclass(frozen=True, slots=True)
class LogAccess:
    """One line of the local access log (kept `access_log_days`, see Journal.maintain)."""

    ts: str
    door: str
    subject: str | None
    scope: str | None
    reason: str
    detail: dict[str, Any]

    def statement(self, ts: str) -> Statement:
        return Statement(
            "INSERT INTO access_log (ts, door, subject, scope, reason, detail)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (self.ts, self.door, self.subject, self.scope, self.reason, to_json(self.detail)),
        )


@dataclass(frozen=True, slots=True)
class PutPrintJob:
    """Queue a print job. A job with a `key` exists once: queueing it again is a
    `conflict` (an order's pick slip is printed once, however often the order comes)."""

    job: str
    printer: str
    kind: str
    payload: bytes
    key: str | None = None
    ref: str | None = None

    def __post_init__(self) -> None:
        if not self.job or not self.printer or not self.kind:
            raise ValueError("a print job needs an id, a printer and a kind")
        if not isinstance(self.payload, bytes) or not self.payload:
            raise ValueError(f"print job {self.job}: payload must be non-empty bytes")

    def statement(self, ts: str) -> Statement:
        return Statement(
            "INSERT INTO print_jobs (id, printer, kind, key, ref, payload, status, created_ts)"
            " VALUES (?, ?, ?, ?, ?, ?, 'queued', ?)",
            (self.job, self.printer, self.kind, self.key, self.ref, self.payload, ts),
        )


@dataclass(frozen=True, slots=True)
class FinishPrintJob:
    """The printer confirmed the job: done, its bytes no longer kept."""

    job: str

    def statement(self, ts: str) -> Statement:
        return Statement(
            "UPDATE print_jobs SET status = 'done', payload = NULL, done_ts = ?"
            " WHERE id = ? AND status = 'queued'",
            (ts, self.job),
            must_match=f"no queued print job {self.job!r}",
        )


@dataclass(frozen=True, slots=True)
class SaveClockAnchor:
    """Keep what the clock needs to tell a restart of the agent from a reboot of the Pi
    (agent/clock.py ClockAnchor, as JSON) beside the last known good time."""

    anchor: str

    def statement(self, ts: str) -> Statement:
        return Statement(
            "INSERT INTO meta (key, value) VALUES ('clock_anchor', ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (self.anchor,),
        )


Op = (
    UsePass
    | ForgetPass
    | PutOrder
    | SetOrderStatus
    | PutSetting
    | PutProduct
    | LogAccess
    | PutPrintJob
    | FinishPrintJob
    | SaveClockAnchor
)
