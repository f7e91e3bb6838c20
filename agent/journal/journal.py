"""The agent's journal: durable events (the outbox to the hub) and local state.

One SQLite file, `journal.db`, in WAL mode with synchronous=FULL: when `append` returns,
the event is on disk. Writes go through one writer thread that commits whatever is
queued in one transaction (see writer.py); reads use their own connection in a worker
thread, so neither blocks the event loop nor waits for the other.

    journal = await Journal.open(storage_dir / "journal.db", "demo-001", clock)
    event = await journal.append("access.granted", {...}, ops=[UsePass(jti, exp)])
    batch = await journal.undelivered(100)         # the relay sends these...
    await journal.mark_delivered([e.seq for e in batch])   # ...and confirms BY SEQ
    await journal.close()

The outbox (the relay's side, agent/relay.py): `add_events_listener(fn)` calls fn on the
event loop after each commit that added events, so the relay needs no polling. An event
the hub refuses is marked with `mark_rejected` (kept, not resent, never pruned);
`rejected()` lists them with the hub's reason and `requeue_rejected()` sends them again.

Events and the ops given with them are committed together or not at all. Failures are
raised as JournalError (code "disk_full", "io", "conflict", ...), never returned. An
append whose caller is cancelled is still written once queued.

The clock: `open` restores the clock from the last known good time and the clock's
anchor saved here (agent/clock.py: what tells a restart of the agent from a reboot of the
Pi), every commit saves the clock's time again (and the anchor when it changed), and
clock jumps are journaled as `clock.jumped` events (noticed on each append, or by
`check_clock()`, which the app calls every few seconds).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from agent.clock import Clock, ClockAnchor, ClockJump, format_rfc3339
from agent.journal import maintenance, state
from agent.journal.errors import BAD_DATA, CLOSED, JournalError, from_sqlite
from agent.journal.maintenance import MaintenanceReport
from agent.journal.ops import Op, SaveClockAnchor, to_json
from agent.journal.state import LocalState, OutboxBatch, OutboxSummary, Rejection
from agent.journal.writer import Call, EventRow, Stop, Write, Writer, connect, in_transaction
from agent.model.events import Event
from agent.model.ids import new_ulid

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_PASS_GRACE = 3600.0  # seconds a used jti is kept after its exp (> any clock skew)
DEFAULT_ACCESS_LOG_DAYS = 180


class Journal:
    """Use `await Journal.open(...)`; `async with` closes it."""

    def __init__(
        self,
        path: Path,
        store: str,
        clock: Clock,
        writer: Writer,
        reader: sqlite3.Connection,
        *,
        max_bytes: int | None,
        pass_grace: float,
        access_log_days: float,
    ) -> None:
        self.path = path
        self.store = store
        self._clock = clock
        self._writer = writer
        self._reader = reader
        self._read_lock = threading.Lock()
        self._loop = asyncio.get_running_loop()
        self._max_bytes = max_bytes
        self._pass_grace = pass_grace
        self._access_log_days = access_log_days
        self._closing: asyncio.Future[None] | None = None
        self._events_listeners: list[Callable[[], None]] = []
        writer.on_events = self._events_added

    @classmethod
    async def open(
        cls,
        path: Path,
        store_id: str,
        clock: Clock,
        *,
        max_bytes: int | None = None,
        pass_grace: float = DEFAULT_PASS_GRACE,
        access_log_days: float = DEFAULT_ACCESS_LOG_DAYS,
    ) -> Journal:
        """Open (creating or migrating) the journal at `path` and restore `clock`."""
        path = Path(path)
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        writer = Writer(path, store_id, asyncio.get_running_loop())
        writer.start()
        try:
            opened = await asyncio.wrap_future(writer.opened)
        except sqlite3.Error as exc:
            raise from_sqlite(exc, f"opening {path}") from exc
        try:
            reader = await asyncio.to_thread(connect, path)
            reader.execute("PRAGMA query_only = ON")
        except BaseException as exc:
            stopped = asyncio.get_running_loop().create_future()
            writer.submit(Stop(clock.now(), stopped))
            await asyncio.wait([stopped])
            if isinstance(exc, sqlite3.Error):
                raise from_sqlite(exc, f"opening {path}") from exc
            raise
        clock.restore(opened.last_known_good, ClockAnchor.from_json(opened.clock_anchor))
        journal = cls(
            path,
            store_id,
            clock,
            writer,
            reader,
            max_bytes=max_bytes,
            pass_grace=pass_grace,
            access_log_days=access_log_days,
        )
        if opened.schema_was:
            log.info("journal %s opened (schema was version %d)", path, opened.schema_was)
        await journal.check_clock()  # a boot with the clock behind is recorded at once
        return journal

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def commits(self) -> int:
        """Write transactions committed so far (a burst of appends shares one)."""
        return self._writer.commits

    # --- writing --------------------------------------------------------------------

    async def append(self, type: str, data: dict[str, Any], *, ops: Sequence[Op] = ()) -> Event:
        """Write one event (and `ops`) durably; returns it with its seq."""
        return (await self._queue_write([(type, data)], ops))[0]

    async def append_many(
        self, items: Sequence[tuple[str, dict[str, Any]]], *, ops: Sequence[Op] = ()
    ) -> list[Event]:
        """Write several events and `ops` in one transaction: all of them or none."""
        return await self._queue_write(items, ops)

    async def apply(self, ops: Sequence[Op]) -> None:
        """Change local state without an event."""
        await self._queue_write((), ops)

    async def mark_delivered(self, seqs: Sequence[int]) -> None:
        """The hub has these events. Unknown seqs (already pruned) are ignored, and so
        are rejected ones (see `requeue_rejected`)."""
        # One statement over a JSON array: the rows are updated in C, GIL released.
        array = to_json([int(s) for s in seqs])

        def mark(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE events SET delivered = 1"
                " WHERE seq IN (SELECT value FROM json_each(?)) AND delivered = 0",
                (array,),
            )

        await self._call(lambda conn: in_transaction(conn, mark))

    async def mark_rejected(self, seqs: Sequence[int], status: int, reason: str) -> None:
        """The hub refused these events for good: keep them, stop sending them."""
        ts = format_rfc3339(self._clock.now())
        params = [(int(s),) for s in seqs]

        def mark(conn: sqlite3.Connection) -> None:
            # Only pending events: a delivered one stays delivered whatever a retry heard.
            conn.executemany(
                "UPDATE events SET delivered = 2 WHERE seq = ? AND delivered = 0", params
            )
            conn.executemany(
                "INSERT INTO rejected (seq, rejected_ts, status, reason)"
                " SELECT seq, ?, ?, ? FROM events WHERE seq = ? AND delivered = 2"
                " ON CONFLICT (seq) DO UPDATE SET rejected_ts = excluded.rejected_ts,"
                " status = excluded.status, reason = excluded.reason",
                [(ts, int(status), reason, s) for (s,) in params],
            )

        await self._call(lambda conn: in_transaction(conn, mark))

    async def requeue_rejected(self, seqs: Sequence[int] | None = None) -> int:
        """Send rejected events again (all of them, or `seqs`); returns how many."""

        def requeue(conn: sqlite3.Connection) -> int:
            if seqs is None:
                chosen = [r[0] for r in conn.execute("SELECT seq FROM rejected")]
            else:
                chosen = [int(s) for s in seqs]
            params = [(s,) for s in chosen]
            conn.executemany("DELETE FROM rejected WHERE seq = ?", params)
            cur = conn.executemany(
                "UPDATE events SET delivered = 0 WHERE seq = ? AND delivered = 2", params
            )
            return cur.rowcount

        count: int = await self._call(lambda conn: in_transaction(conn, requeue))
        if count:
            self._events_added()
        return count

    def add_events_listener(self, fn: Callable[[], None]) -> None:
        """Call fn() on the event loop after each commit that added events."""
        self._events_listeners.append(fn)

    def remove_events_listener(self, fn: Callable[[], None]) -> None:
        if fn in self._events_listeners:
            self._events_listeners.remove(fn)

    def _events_added(self) -> None:
        for fn in list(self._events_listeners):
            fn()

    async def check_clock(self) -> list[Event]:
        """Journal any clock jump noticed since the last check (as `clock.jumped`), and
        save the clock's anchor if it changed."""
        self._clock.now()
        jumps = self._clock.take_jumps()
        anchor = self._clock.take_anchor()
        if not jumps and anchor is None:
            return []
        if self._closing is not None:
            raise JournalError(CLOSED, f"journal {self.path} is closed")
        return await self._write(_jump_items(jumps), _anchor_ops(anchor), self._clock.now())

    async def maintain(self) -> MaintenanceReport:
        """Prune old passes and access log lines, and apply the size cap (maintenance.py)."""
        now = self._clock.now()
        ts, ms = format_rfc3339(now), int(now * 1000)

        def new_row(type_: str, data: str) -> EventRow:
            return (new_ulid(ms), ts, type_, data)

        report: MaintenanceReport = await self._call(
            lambda conn: maintenance.run(
                conn,
                self.path,
                passes_before=now - self._pass_grace,
                access_log_before=format_rfc3339(now - self._access_log_days * 86400),
                max_bytes=self._max_bytes,
                new_row=new_row,
            )
        )
        if report.undelivered_dropped or report.over_cap:
            log.warning("journal over its size cap: %s", report)
        if report.undelivered_dropped:
            self._events_added()  # it journaled a `journal.dropped` event
        return report

    async def close(self) -> None:
        """Write what is queued, save the clock, close. Safe to call twice."""
        if self._closing is None:
            self._closing = self._loop.create_future()
            anchor = self._clock.anchor().to_json()
            self._writer.submit(Stop(self._clock.now(), self._closing, anchor))
            try:
                await self._closing
            finally:
                await asyncio.to_thread(self._writer.join)
                with self._read_lock:
                    self._reader.close()
        else:
            await asyncio.wait([self._closing])

    def _queue_write(
        self, items: Sequence[tuple[str, dict[str, Any]]], ops: Sequence[Op]
    ) -> asyncio.Future[list[Event]]:
        if self._closing is not None:
            raise JournalError(CLOSED, f"journal {self.path} is closed")
        now = self._clock.now()
        jumps = self._clock.take_jumps()
        anchor = self._clock.take_anchor()
        if jumps or anchor is not None:
            # Queued first, so the jump gets a lower seq than what it may have affected.
            jump_write = self._write(_jump_items(jumps), _anchor_ops(anchor), now)
            jump_write.add_done_callback(_log_failure)
        return self._write(items, ops, now)

    def _write(
        self, items: Sequence[tuple[str, dict[str, Any]]], ops: Sequence[Op], now: float
    ) -> asyncio.Future[list[Event]]:
        ts, ms = format_rfc3339(now), int(now * 1000)
        rows: list[EventRow] = []
        datas: list[dict[str, Any]] = []
        for type_, data in items:
            if not isinstance(type_, str) or not type_ or not type_.isprintable():
                raise JournalError(BAD_DATA, f"an event type is printable text, not {type_!r}")
            if not isinstance(data, dict):
                raise JournalError(BAD_DATA, f"{type_}: data must be a dict, not {data!r}")
            try:
                rows.append((new_ulid(ms), ts, type_, to_json(data)))
            except (TypeError, ValueError) as exc:
                raise JournalError(BAD_DATA, f"{type_}: data is not JSON: {exc}") from exc
            datas.append(data)
        try:
            statements = [op.statement(ts) for op in ops]
        except (TypeError, ValueError) as exc:
            raise JournalError(BAD_DATA, f"op is not storable: {exc}") from exc
        future: asyncio.Future[list[Event]] = self._loop.create_future()
        self._writer.submit(Write(rows, datas, statements, now, future))
        return future

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run fn on the writer's connection, in order with the writes queued before."""
        if self._closing is not None:
            raise JournalError(CLOSED, f"journal {self.path} is closed")
        future: asyncio.Future[T] = self._loop.create_future()
        self._writer.submit(Call(fn, future))
        return await future

    # Tests use this to reach the write connection (e.g. PRAGMA max_page_count).
    _run_in_writer = _call

    # --- reading --------------------------------------------------------------------

    async def events_after(self, seq: int, limit: int) -> list[Event]:
        """Events with seq > `seq`, in seq order (delivered or not)."""
        return await self._read(state.events_after, self.store, seq, limit)

    async def undelivered(self, limit: int) -> list[Event]:
        """The oldest `limit` events not yet confirmed by the hub, in seq order."""
        return await self._read(state.undelivered, self.store, limit)

    async def undelivered_after(self, seq: int, limit: int) -> list[Event]:
        """Like `undelivered`, only events with seq > `seq` (the relay's read-ahead)."""
        return await self._read(state.undelivered_after, self.store, seq, limit)

    async def outbox_batch(self, after: int, limit: int) -> OutboxBatch:
        """Up to `limit` undelivered events with seq > `after`, as the hub's request body."""
        return await self._read(state.outbox_batch, self.store, after, limit)

    async def outbox_stats(self) -> tuple[int, str | None]:
        """(events not yet delivered, ts of the oldest of them or None)."""
        return await self._read(state.outbox_stats)

    async def outbox_summary(self) -> OutboxSummary:
        """Pending events, the oldest one's ts, and how many the hub rejected."""
        return await self._read(state.outbox_summary)

    async def rejected(self, limit: int = 100) -> list[Rejection]:
        """Events the hub refused, oldest first, with its status and answer."""
        return await self._read(state.rejected, self.store, limit)

    async def load_state(self) -> LocalState:
        return await self._read(state.load_state)

    async def print_queue(self) -> state.PrintQueue:
        """Print jobs not yet confirmed (oldest first) and the keys of once-only jobs."""
        return await self._read(state.print_queue)

    async def access_log(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest `limit` access log lines, newest first."""
        return await self._read(state.access_log, limit)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closing is not None:
            raise JournalError(CLOSED, f"journal {self.path} is closed")

        def run() -> T:
            with self._read_lock:
                try:
                    return fn(self._reader, *args)
                except sqlite3.Error as exc:
                    raise from_sqlite(exc, f"reading {self.path}") from exc

        return await asyncio.to_thread(run)


def _jump_items(jumps: list[ClockJump]) -> list[tuple[str, dict[str, Any]]]:
    return [("clock.jumped", jump.to_data()) for jump in jumps]


def _anchor_ops(anchor: ClockAnchor | None) -> list[Op]:
    return [] if anchor is None else [SaveClockAnchor(anchor.to_json())]


def _log_failure(future: asyncio.Future[list[Event]]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("journal: could not record a clock jump: %s", future.exception())
