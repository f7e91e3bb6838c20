"""The journal's writer thread: the only code that writes to journal.db.

Group commit: callers queue requests; the thread takes everything queued (up to
MAX_BATCH requests), writes it all in ONE transaction, commits (one fsync for the whole
burst), then resolves every caller's future on the event loop in one callback. A burst
of a thousand appends costs one commit, not a thousand.

If the commit fails (disk full, I/O error) every request of the batch gets the same
JournalError and nothing of the batch is written; the next batch simply tries again.
A failure that belongs to one request (a replayed pass, an unknown order) is retried
request by request so it fails only its own caller.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future as ThreadFuture
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.journal.checkpoint import Checkpointer
from agent.journal.errors import BATCH_WIDE, INTERNAL, NOT_FOUND, JournalError, from_sqlite
from agent.journal.ops import Statement, to_json
from agent.journal.schema import migrate
from agent.model.events import Event

log = logging.getLogger(__name__)

MAX_BATCH = 20_000
# The WAL file is cut back to this after a checkpoint (it otherwise keeps its peak size).
WAL_SIZE_LIMIT = 8 * 1024 * 1024

EventRow = tuple[str, str, str, str]  # (id, ts, type, data as JSON)

# ids (ULIDs) and ts (RFC 3339) never need JSON escaping; types and data are JSON already.
_INSERT_EVENTS = (
    "INSERT INTO events (id, ts, type, data)"
    " SELECT value ->> 0, value ->> 1, value ->> 2, value -> 3 FROM json_each(?) ORDER BY key"
)
_type_json = functools.lru_cache(maxsize=1024)(to_json)


@dataclass(slots=True)
class Write:
    """One caller's events and state changes: all written, or none."""

    rows: list[EventRow]
    datas: list[dict[str, Any]]  # the caller's data objects, returned in its Events
    statements: list[Statement]
    now: float  # the clock's time when queued; saved as the last known good time
    future: asyncio.Future[list[Event]]


@dataclass(slots=True)
class Call:
    """Run `fn(conn)` on the writer's connection (it manages its own transactions)."""

    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]


@dataclass(slots=True)
class Stop:
    last_known_good: float
    future: asyncio.Future[None]
    clock_anchor: str | None = None  # agent/clock.py ClockAnchor as JSON, saved with it


@dataclass(frozen=True, slots=True)
class Opened:
    """What the writer learned while opening the database."""

    schema_was: int
    last_known_good: float | None
    clock_anchor: str | None = None  # as the clock saved it (agent/clock.py ClockAnchor)


def connect(path: Path) -> sqlite3.Connection:
    """A connection with the journal's settings (the writer's and the reader's alike)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        # Lets maintenance give freed pages back to the disk. It only takes effect on a
        # new, empty database (before WAL mode writes the header); elsewhere a no-op.
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise JournalError(INTERNAL, f"{path}: SQLite refused WAL mode (got {mode!r})")
        # FULL: the WAL is fsynced at every commit, so an acknowledged event survives a
        # power cut, not only a crash of this process.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        # Checkpoints run in their own thread (agent/journal/checkpoint.py), not in a
        # commit that happens to cross the threshold.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
    except BaseException:
        conn.close()
        raise
    return conn


class Writer(threading.Thread):
    def __init__(self, path: Path, store: str, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(name=f"journal-writer:{path.name}", daemon=True)
        self._path = path
        self._store = store
        self._loop = loop
        self._queue: queue.SimpleQueue[Write | Call | Stop] = queue.SimpleQueue()
        self._conn: sqlite3.Connection | None = None
        self.opened: ThreadFuture[Opened] = ThreadFuture()
        self.commits = 0  # transactions committed with events or ops (tests, bench)
        # Called on the event loop after a commit that may have added events (the relay
        # waits on it instead of polling). Set before the first write.
        self.on_events: Callable[[], None] | None = None
        self.checkpointer = Checkpointer(path)

    def submit(self, item: Write | Call | Stop) -> None:
        self._queue.put(item)

    # --- the thread -----------------------------------------------------------------

    def run(self) -> None:
        try:
            self._conn = connect(self._path)
            schema_was = migrate(self._conn)
            meta = dict(
                self._conn.execute(
                    "SELECT key, value FROM meta WHERE key IN ('last_known_good', 'clock_anchor')"
                ).fetchall()
            )
            lkg = meta.get("last_known_good")
            self.checkpointer.start()
            self.opened.set_result(
                Opened(schema_was, float(lkg) if lkg else None, meta.get("clock_anchor"))
            )
        except BaseException as exc:
            if self._conn is not None:
                self._conn.close()
            self.opened.set_exception(exc)
            return
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                if not self._run_batch(batch):
                    return
            except BaseException as exc:  # never let the thread die with callers waiting
                log.exception("journal writer: unexpected failure")
                _rollback(self._conn)
                error = JournalError(INTERNAL, f"journal writer failed: {exc!r}")
                self._resolve([(item.future, error) for item in batch])

    def _run_batch(self, batch: list[Write | Call | Stop]) -> bool:
        """Process the batch in order; False once a Stop was processed."""
        writes: list[Write] = []
        for item in batch:
            if isinstance(item, Write):
                writes.append(item)
                continue
            if writes:
                self._resolve(self._commit(writes), _has_rows(writes))
                writes = []
            if isinstance(item, Call):
                self._resolve([(item.future, self._call(item.fn))])
            else:
                self._finish(item)
                return False
        if writes:
            self._resolve(self._commit(writes), _has_rows(writes))
        return True

    def _commit(self, writes: list[Write]) -> list[tuple[asyncio.Future[Any], Any]]:
        conn = self._conn
        assert conn is not None
        try:
            conn.execute("BEGIN IMMEDIATE")
            results = self._write_all(conn, writes)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('last_known_good', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (repr(max(w.now for w in writes)),),
            )
            conn.execute("COMMIT")
        except (sqlite3.Error, JournalError) as exc:
            _rollback(conn)
            error = exc if isinstance(exc, JournalError) else from_sqlite(exc, "journal write")
            if error.code in BATCH_WIDE or len(writes) == 1:
                if error.code in BATCH_WIDE:
                    log.error("journal: %d writes failed: %s", len(writes), error)
                return [(w.future, error) for w in writes]
            # One request's own fault (e.g. a pass used twice): give each its own
            # transaction so only that caller hears about it.
            return [pair for w in writes for pair in self._commit([w])]
        self.commits += 1
        self.checkpointer.committed()
        return list(zip((w.future for w in writes), results, strict=True))

    def _write_all(self, conn: sqlite3.Connection, writes: list[Write]) -> list[list[Event]]:
        rows = [row for w in writes for row in w.rows]
        first_seq = 0
        if rows:
            # The whole batch goes in as ONE statement over a JSON array: SQLite then
            # inserts every row in C with the GIL released, instead of handing the GIL
            # back and forth with the event loop once per row (as executemany does),
            # which made a burst several times slower.
            array = ",".join(
                f'["{id_}","{ts}",{_type_json(type_)},{data}]' for id_, ts, type_, data in rows
            )
            cur = conn.execute(_INSERT_EVENTS, (f"[{array}]",))
            # One writer, one transaction, AUTOINCREMENT: the rows got consecutive seqs
            # ending at the last inserted rowid.
            if cur.rowcount != len(rows) or cur.lastrowid is None:
                raise JournalError(INTERNAL, f"inserted {cur.rowcount} of {len(rows)} events")
            first_seq = cur.lastrowid - len(rows) + 1
        results: list[list[Event]] = []
        seq = first_seq
        for w in writes:
            for st in w.statements:
                cur = conn.execute(st.sql, st.params)
                if st.must_match is not None and cur.rowcount == 0:
                    raise JournalError(NOT_FOUND, st.must_match)
            events = []
            for (id_, ts, type_, _), data in zip(w.rows, w.datas, strict=True):
                events.append(Event(id_, self._store, seq, ts, type_, data))
                seq += 1
            results.append(events)
        return results

    def _call(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        conn = self._conn
        assert conn is not None
        try:
            return fn(conn)
        except JournalError as exc:
            _rollback(conn)
            return exc
        except sqlite3.Error as exc:
            _rollback(conn)
            return from_sqlite(exc, "journal")

    def _finish(self, stop: Stop) -> None:
        conn = self._conn
        assert conn is not None
        self.checkpointer.stop()
        result: JournalError | None = None
        try:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('last_known_good', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (repr(stop.last_known_good),),
            )
            if stop.clock_anchor is not None:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('clock_anchor', ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (stop.clock_anchor,),
                )
            # Fold the WAL back into the database so the next open starts clean.
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            result = from_sqlite(exc, "journal close")
        finally:
            conn.close()
        self._resolve([(stop.future, result)])

    def _resolve(self, pairs: list[tuple[asyncio.Future[Any], Any]], events: bool = False) -> None:
        # A failed commit notifies too: a spurious wake-up costs the relay one empty read.
        notify = self.on_events if events else None
        try:
            self._loop.call_soon_threadsafe(_settle, pairs, notify)
        except RuntimeError:
            log.warning("journal: event loop closed; %d results dropped", len(pairs))


def _settle(
    pairs: list[tuple[asyncio.Future[Any], Any]], notify: Callable[[], None] | None = None
) -> None:
    """On the event loop: hand each caller its result (a caller may have given up)."""
    for future, result in pairs:
        if future.done():
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
    if notify is not None:
        try:
            notify()
        except Exception:  # a listener's bug must not cost the callers their results
            log.exception("journal: new-events listener failed")


def _has_rows(writes: list[Write]) -> bool:
    return any(w.rows for w in writes)


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            log.exception("journal: rollback failed")


def in_transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], Any]) -> Any:
    """Run fn(conn) inside BEGIN IMMEDIATE ... COMMIT (rolled back by Writer._call)."""
    conn.execute("BEGIN IMMEDIATE")
    result = fn(conn)
    conn.execute("COMMIT")
    return result
