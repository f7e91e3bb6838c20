"""The journal's tables, and the migrations that bring any older database up to date.

The schema version is SQLite's `PRAGMA user_version`. MIGRATIONS[i] takes a database
from version i to i + 1; each step runs in its own transaction together with the
version bump, so a crash mid-migration leaves the previous version intact. Add new steps
at the end; never edit a released one.
"""

from __future__ import annotations

import sqlite3

from agent.journal.errors import SCHEMA_TOO_NEW, JournalError

MIGRATIONS: list[str] = [
    # 1: the outbox. AUTOINCREMENT so a seq is never handed out twice, even after the
    # newest events were deleted or a crash rolled back a transaction that used it.
    """
    CREATE TABLE events (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        id        TEXT    NOT NULL UNIQUE,
        ts        TEXT    NOT NULL,
        type      TEXT    NOT NULL,
        data      TEXT    NOT NULL,          -- JSON object
        delivered INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX events_undelivered ON events (seq) WHERE delivered = 0;
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 2: the local state the agent needs while the hub is out of reach.
    """
    CREATE TABLE orders (
        id          TEXT PRIMARY KEY,
        status      TEXT NOT NULL,
        pickup_code TEXT,
        body        TEXT NOT NULL,           -- JSON: the order as orders.upsert carried it
        updated_ts  TEXT NOT NULL
    );
    CREATE INDEX orders_pickup_code ON orders (pickup_code);
    CREATE TABLE used_passes (
        jti TEXT PRIMARY KEY,
        exp REAL NOT NULL
    );
    CREATE INDEX used_passes_exp ON used_passes (exp);
    CREATE TABLE access_log (
        id      INTEGER PRIMARY KEY,
        ts      TEXT NOT NULL,
        door    TEXT NOT NULL,
        subject TEXT,
        scope   TEXT,
        reason  TEXT NOT NULL,
        detail  TEXT NOT NULL                -- JSON object
    );
    CREATE INDEX access_log_ts ON access_log (ts);
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL                  -- JSON
    );
    CREATE TABLE products (
        barcode TEXT PRIMARY KEY,
        body    TEXT NOT NULL                -- JSON: the product as catalog.upsert carried it
    );
    """,
    # 3: events the hub refused (a 4xx that is not about the token, the URL or the load).
    # The event stays in `events` with delivered = 2: not resent, never pruned by the size
    # cap (only delivered = 1 and droppable delivered = 0 rows are), kept for inspection.
    """
    CREATE TABLE rejected (
        seq         INTEGER PRIMARY KEY REFERENCES events (seq),
        rejected_ts TEXT    NOT NULL,
        status      INTEGER NOT NULL,        -- the hub's HTTP status
        reason      TEXT    NOT NULL         -- the hub's answer (truncated)
    )
    """,
    # 4: print jobs, so a job survives a printer error, an unplug and a power loss, and a
    # once-only job (an order's pick slip, keyed) is never queued twice. The ESC/POS bytes
    # are rendered once, so a retry prints exactly what the first attempt would have.
    """
    CREATE TABLE print_jobs (
        id         TEXT PRIMARY KEY,         -- time-ordered (ULID): the queue order
        printer    TEXT NOT NULL,
        kind       TEXT NOT NULL,            -- text | pick_slip | receipt | label
        key        TEXT UNIQUE,              -- once-only jobs, e.g. pick_slip:<order id>
        ref        TEXT,                     -- what it prints (an order id, a barcode...)
        payload    BLOB,                     -- the bytes to send (dropped once printed)
        status     TEXT NOT NULL,            -- queued | done
        created_ts TEXT NOT NULL,
        done_ts    TEXT
    )
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, steps: list[str] = MIGRATIONS) -> int:
    """Bring the database up to `len(steps)`; returns the version it was at.

    `conn` must be in autocommit mode (isolation_level=None). A database newer than the
    code is refused rather than guessed at: an older agent must not write into it.
    """
    found = schema_version(conn)
    if found > len(steps):
        raise JournalError(
            SCHEMA_TOO_NEW,
            f"the journal database has schema version {found}, this agent knows up to "
            f"{len(steps)}: run the newer agent (or restore a backup made by this one)",
        )
    for version in range(found, len(steps)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(steps[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return found


def _statements(script: str) -> list[str]:
    # executescript() would commit behind our back; split instead (no ';' in literals).
    return [s.strip() for s in script.split(";") if s.strip()]
