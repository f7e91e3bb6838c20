"""Reading the journal: the local state at start-up, the outbox, the access log.

Plain functions of a read connection; Journal runs them in a worker thread.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from agent.journal.ops import to_json
from agent.model.events import Event

_EVENT_COLUMNS = "seq, id, ts, type, data"


@dataclass(slots=True)
class LocalState:
    """Everything the agent keeps locally, as it was last committed."""

    orders: dict[str, dict[str, Any]]  # order id -> the order
    used_passes: dict[str, float]  # jti -> exp
    settings: dict[str, Any]
    products: dict[str, dict[str, Any]]  # barcode -> the product
    last_seq: int  # the highest seq ever handed out (0 before the first event)


def load_state(conn: sqlite3.Connection) -> LocalState:
    # One read transaction, so the tables are seen at the same instant.
    conn.execute("BEGIN")
    try:
        orders = {i: json.loads(b) for i, b in conn.execute("SELECT id, body FROM orders")}
        passes = dict(conn.execute("SELECT jti, exp FROM used_passes").fetchall())
        settings = {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM settings")}
        products = {
            b: json.loads(body) for b, body in conn.execute("SELECT barcode, body FROM products")
        }
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    finally:
        conn.execute("COMMIT")
    return LocalState(orders, passes, settings, products, row[0] if row else 0)


@dataclass(frozen=True, slots=True)
class PrintJob:
    """A print job not yet confirmed by its printer."""

    id: str
    printer: str
    kind: str
    key: str | None
    ref: str | None
    payload: bytes
    created_ts: str


@dataclass(slots=True)
class PrintQueue:
    queued: list[PrintJob]  # oldest first
    keys: set[str]  # every once-only job ever queued (printed or not)


def print_queue(conn: sqlite3.Connection) -> PrintQueue:
    conn.execute("BEGIN")
    try:
        rows = conn.execute(
            "SELECT id, printer, kind, key, ref, payload, created_ts FROM print_jobs"
            " WHERE status = 'queued' ORDER BY id"
        ).fetchall()
        keys = {k for (k,) in conn.execute("SELECT key FROM print_jobs WHERE key IS NOT NULL")}
    finally:
        conn.execute("COMMIT")
    return PrintQueue([PrintJob(*row) for row in rows], keys)


def events_after(conn: sqlite3.Connection, store: str, seq: int, limit: int) -> list[Event]:
    rows = conn.execute(
        f"SELECT {_EVENT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
    )
    return [_event(store, row) for row in rows]


def undelivered(conn: sqlite3.Connection, store: str, limit: int) -> list[Event]:
    rows = conn.execute(
        f"SELECT {_EVENT_COLUMNS} FROM events WHERE delivered = 0 ORDER BY seq LIMIT ?", (limit,)
    )
    return [_event(store, row) for row in rows]


def undelivered_after(conn: sqlite3.Connection, store: str, seq: int, limit: int) -> list[Event]:
    rows = conn.execute(
        f"SELECT {_EVENT_COLUMNS} FROM events WHERE delivered = 0 AND seq > ? ORDER BY seq LIMIT ?",
        (seq, limit),
    )
    return [_event(store, row) for row in rows]


@dataclass(frozen=True, slots=True)
class OutboxBatch:
    """Undelivered events ready to send: their seqs and the request body."""

    seqs: list[int]  # ascending
    body: str  # {"events": [...]}: each event exactly as Event.to_dict() gives it


def outbox_batch(conn: sqlite3.Connection, store: str, after: int, limit: int) -> OutboxBatch:
    # SQLite builds the body in C (the GIL released), instead of Python decoding every
    # event's data only to encode it again: during a drain that round trip held the GIL
    # long enough to delay the event loop (door decisions) by 10+ ms.
    seqs_json, objects = conn.execute(
        "SELECT json_group_array(seq), group_concat(json_object('id', id, 'store', ?,"
        " 'seq', seq, 'ts', ts, 'type', type, 'data', json(data)), ',')"
        " FROM (SELECT seq, id, ts, type, data FROM events WHERE delivered = 0 AND seq > ?"
        " ORDER BY seq LIMIT ?)",
        (store, after, limit),
    ).fetchone()
    seqs: list[int] = json.loads(seqs_json)
    # Both aggregates see the rows in one order; SQLite keeps the subquery's in practice
    # but does not promise it (no ORDER BY in aggregates before 3.44), so check.
    if any(a >= b for a, b in itertools.pairwise(seqs)):
        events = undelivered_after(conn, store, after, limit)
        body = to_json({"events": [e.to_dict() for e in events]})
        return OutboxBatch([e.seq for e in events], body)
    return OutboxBatch(seqs, '{"events":[' + (objects or "") + "]}")


@dataclass(frozen=True, slots=True)
class OutboxSummary:
    pending: int  # events not yet delivered and not rejected
    oldest_pending_ts: str | None
    rejected: int  # events the hub refused, kept in the journal (see `rejected`)


def outbox_summary(conn: sqlite3.Connection) -> OutboxSummary:
    pending, oldest = outbox_stats(conn)
    rejected = conn.execute("SELECT count(*) FROM rejected").fetchone()[0]
    return OutboxSummary(pending, oldest, rejected)


@dataclass(frozen=True, slots=True)
class Rejection:
    """An event the hub refused, and why."""

    event: Event
    rejected_ts: str
    status: int
    reason: str


def rejected(conn: sqlite3.Connection, store: str, limit: int) -> list[Rejection]:
    rows = conn.execute(
        "SELECT e.seq, e.id, e.ts, e.type, e.data, r.rejected_ts, r.status, r.reason"
        " FROM rejected r JOIN events e ON e.seq = r.seq ORDER BY r.seq LIMIT ?",
        (limit,),
    )
    return [Rejection(_event(store, row[:5]), row[5], row[6], row[7]) for row in rows]


def outbox_stats(conn: sqlite3.Connection) -> tuple[int, str | None]:
    count, oldest = conn.execute(
        "SELECT count(*), (SELECT ts FROM events WHERE delivered = 0 ORDER BY seq LIMIT 1)"
        " FROM events WHERE delivered = 0"
    ).fetchone()
    return count, oldest


def access_log(conn: sqlite3.Connection, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT ts, door, subject, scope, reason, detail FROM access_log ORDER BY id DESC LIMIT ?",
        (limit,),
    )
    return [
        {
            "ts": ts,
            "door": door,
            "subject": subject,
            "scope": scope,
            "reason": reason,
            "detail": json.loads(detail),
        }
        for ts, door, subject, scope, reason, detail in rows
    ]


def _event(store: str, row: tuple[int, str, str, str, str]) -> Event:
    seq, id_, ts, type_, data = row
    return Event(id_, store, seq, ts, type_, json.loads(data))
