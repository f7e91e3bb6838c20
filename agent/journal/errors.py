"""The journal's one exception, and how SQLite errors map onto its codes."""

from __future__ import annotations

import sqlite3

# Codes a caller may act on. "disk_full" and "io" are about the disk, not the request:
# the same append may succeed later.
DISK_FULL = "disk_full"
IO = "io"
BUSY = "busy"
CORRUPT = "corrupt"
CONFLICT = "conflict"  # e.g. a pass's jti used twice
NOT_FOUND = "not_found"  # e.g. the status of an order the journal doesn't hold
BAD_DATA = "bad_data"  # data that cannot be stored as JSON
CLOSED = "closed"
SCHEMA_TOO_NEW = "schema_too_new"
INTERNAL = "internal"

# Errors that would hit every request of a batch alike: retrying one by one is pointless.
BATCH_WIDE = frozenset({DISK_FULL, IO, BUSY, CORRUPT, INTERNAL})

_PRIMARY_CODES = {
    13: DISK_FULL,  # SQLITE_FULL
    10: IO,  # SQLITE_IOERR
    14: IO,  # SQLITE_CANTOPEN
    5: BUSY,  # SQLITE_BUSY
    6: BUSY,  # SQLITE_LOCKED
    11: CORRUPT,  # SQLITE_CORRUPT
    26: CORRUPT,  # SQLITE_NOTADB
    19: CONFLICT,  # SQLITE_CONSTRAINT
}


class JournalError(Exception):
    """Something the journal could not do. `code` says what kind of failure it was."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def from_sqlite(exc: sqlite3.Error, doing: str) -> JournalError:
    """A JournalError for an SQLite failure; raise it `from exc`."""
    errcode = getattr(exc, "sqlite_errorcode", None)
    code = _PRIMARY_CODES.get(errcode & 0xFF, INTERNAL) if errcode is not None else INTERNAL
    if isinstance(exc, sqlite3.IntegrityError):
        code = CONFLICT
    return JournalError(code, f"{doing}: {exc}")
