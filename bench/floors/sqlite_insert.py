"""The floor under the journal: bare sqlite3 inserts with the journal's settings (WAL,
synchronous=FULL: each commit fsynced), same folder, same row size."""

from __future__ import annotations

import json
import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any

ROW = json.dumps({"door": "front", "subject": "courier-1234", "reason": "granted"})


def _open(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute(
        "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
        "id TEXT UNIQUE, ts TEXT, type TEXT, data TEXT)"
    )
    return con


def single_commits(folder: Path, n: int = 1000) -> dict[str, Any]:
    """One row per transaction: the latency of one durable append, bare."""
    con = _open(folder / "floor-single.db")
    samples = []
    try:
        for i in range(n):
            t0 = time.perf_counter()
            con.execute("BEGIN")
            con.execute(
                "INSERT INTO events (id, ts, type, data) VALUES (?, ?, ?, ?)",
                (f"s{i}", "2026-01-01T00:00:00Z", "door.opened", ROW),
            )
            con.execute("COMMIT")
            samples.append((time.perf_counter() - t0) * 1000)
    finally:
        con.close()
    samples.sort()
    return {"p50_ms": statistics.median(samples), "commits": n}


def grouped(folder: Path, rows: int = 50_000, per_commit: int = 500) -> dict[str, Any]:
    """Many rows per transaction: what group commit can at best reach, bare."""
    con = _open(folder / "floor-grouped.db")
    t0 = time.perf_counter()
    try:
        for start in range(0, rows, per_commit):
            con.execute("BEGIN")
            con.executemany(
                "INSERT INTO events (id, ts, type, data) VALUES (?, ?, ?, ?)",
                [
                    (f"g{i}", "2026-01-01T00:00:00Z", "access.granted", ROW)
                    for i in range(start, start + per_commit)
                ],
            )
            con.execute("COMMIT")
    finally:
        con.close()
    return {"rows_per_s": rows / (time.perf_counter() - t0), "per_commit": per_commit}
