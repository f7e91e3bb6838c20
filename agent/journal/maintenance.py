"""Housekeeping: forget what no longer matters, and keep the journal under its size cap.

Runs on the writer's connection (Journal.maintain queues it like any write).

Pruning: used passes whose `exp` + grace is past (an expired pass is refused anyway;
the grace covers the accepted clock skew), and access-log lines older than N days.

The size cap (`max_bytes`, database + WAL on disk). When over it:
1. delete DELIVERED events, oldest first (the hub has them);
2. still over: delete UNDELIVERED events of droppable types, oldest first. Droppable
   types are the telemetry prefixes in DROPPABLE_PREFIXES (door.*, device.*, agent.*,
   clock.*, printer.*); the drop is itself journaled as `journal.dropped`
   {"count": N, "types": {type: n}} in the same transaction. Every other type
   (access.*, pickup.*, order*, stock.*, sale.*, vend.*, locker.*, anything unknown)
   is never dropped;
3. still over: keep everything, keep accepting appends, and report `over_cap=True`:
   losing a sale is worse than using disk.
Events the hub rejected (delivered = 2, see schema.py) are neither: never deleted here,
whatever their type, until someone looks at them (Journal.rejected / requeue_rejected).
Deleting stops at 90% of the cap so maintenance does not run at the edge every time.
Afterwards the free pages are given back (auto_vacuum=INCREMENTAL) and the WAL is
checkpointed and truncated, so the files really shrink.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agent.journal.ops import to_json
from agent.journal.writer import EventRow

DROPPABLE_PREFIXES = ("door.", "device.", "agent.", "clock.", "printer.")
TARGET_FRACTION = 0.9

_DROPPABLE = " OR ".join(f"type GLOB '{prefix}*'" for prefix in DROPPABLE_PREFIXES)


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    passes_pruned: int = 0
    access_log_pruned: int = 0
    delivered_deleted: int = 0
    undelivered_dropped: int = 0
    dropped_types: dict[str, int] = field(default_factory=dict)
    bytes_before: int = 0
    bytes_after: int = 0
    over_cap: bool = False


def file_bytes(path: Path) -> int:
    """journal.db plus its WAL, as they are on disk now."""
    total = 0
    for p in (path, path.with_name(path.name + "-wal")):
        try:
            total += p.stat().st_size
        except FileNotFoundError:
            pass
    return total


def run(
    conn: sqlite3.Connection,
    path: Path,
    *,
    passes_before: float,
    access_log_before: str,
    max_bytes: int | None,
    new_row: Callable[[str, str], EventRow],
) -> MaintenanceReport:
    """One maintenance pass. `new_row(type, data_json)` makes the journal.dropped row."""
    bytes_before = file_bytes(path)
    conn.execute("BEGIN IMMEDIATE")
    passes = conn.execute("DELETE FROM used_passes WHERE exp < ?", (passes_before,)).rowcount
    lines = conn.execute("DELETE FROM access_log WHERE ts < ?", (access_log_before,)).rowcount
    conn.execute("COMMIT")

    delivered = dropped = 0
    types: dict[str, int] = {}
    if max_bytes is not None and file_bytes(path) > max_bytes:
        # The WAL counts against the cap too, and deleting rows writes to it: start with
        # it folded back so the live pages are what we measure.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        target = int(max_bytes * TARGET_FRACTION)
        conn.execute("BEGIN IMMEDIATE")
        delivered = _delete_until(conn, target, "delivered = 1")
        if _live_bytes(conn) > target:
            dropped, types = _drop_until(conn, target, new_row)
        conn.execute("COMMIT")
    _shrink(conn)
    bytes_after = file_bytes(path)
    return MaintenanceReport(
        passes_pruned=passes,
        access_log_pruned=lines,
        delivered_deleted=delivered,
        undelivered_dropped=dropped,
        dropped_types=types,
        bytes_before=bytes_before,
        bytes_after=bytes_after,
        over_cap=max_bytes is not None and bytes_after > max_bytes,
    )


def _live_bytes(conn: sqlite3.Connection) -> int:
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    return (pages - free) * size


def _chunk(conn: sqlite3.Connection, target: int) -> int:
    """How many events to delete next to get near `target` (an estimate; we loop)."""
    live = _live_bytes(conn)
    rows = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    per_row = live / max(rows, 1)  # other tables make this an overestimate: safe
    return max(10, math.ceil((live - target) / per_row))


def _delete_until(conn: sqlite3.Connection, target: int, where: str) -> int:
    deleted = 0
    while _live_bytes(conn) > target:
        n = conn.execute(
            f"DELETE FROM events WHERE seq IN"
            f" (SELECT seq FROM events WHERE {where} ORDER BY seq LIMIT ?)",
            (_chunk(conn, target),),
        ).rowcount
        if n == 0:
            break
        deleted += n
    return deleted


def _drop_until(
    conn: sqlite3.Connection, target: int, new_row: Callable[[str, str], EventRow]
) -> tuple[int, dict[str, int]]:
    where = f"delivered = 0 AND ({_DROPPABLE})"
    types: dict[str, int] = {}
    while _live_bytes(conn) > target:
        chosen = f"SELECT seq FROM events WHERE {where} ORDER BY seq LIMIT ?"
        limit = (_chunk(conn, target),)
        counts = conn.execute(
            f"SELECT type, count(*) FROM events WHERE seq IN ({chosen}) GROUP BY type", limit
        ).fetchall()
        if not counts:
            break
        conn.execute(f"DELETE FROM events WHERE seq IN ({chosen})", limit)
        for type_, n in counts:
            types[type_] = types.get(type_, 0) + n
    count = sum(types.values())
    if count:
        conn.execute(
            "INSERT INTO events (id, ts, type, data) VALUES (?, ?, ?, ?)",
            new_row("journal.dropped", to_json({"count": count, "types": types})),
        )
    return count, types


def _shrink(conn: sqlite3.Connection) -> None:
    # Each step of this pragma frees one page and execute() steps only once;
    # executescript() steps it to the end (we are outside a transaction here).
    conn.executescript("PRAGMA incremental_vacuum;")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
