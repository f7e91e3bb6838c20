"""A read-only look at a journal another process is writing (WAL allows it).

For tools, tests and the demo: it opens the file read-only per query and never holds a
lock, so the running agent is not disturbed.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any


class JournalView:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        if not self.path.exists():
            return []
        con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        con.row_factory = sqlite3.Row
        try:
            return con.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            return []  # tables not created yet
        finally:
            con.close()

    def events(self, type_: str | None = None, after_seq: int = 0) -> list[dict[str, Any]]:
        """Events after `after_seq`, in seq order, optionally of one type."""
        sql = "SELECT seq, id, ts, type, data FROM events WHERE seq > ?"
        args: tuple[Any, ...] = (after_seq,)
        if type_ is not None:
            sql += " AND type = ?"
            args += (type_,)
        rows = self._query(sql + " ORDER BY seq", args)
        return [
            {
                "seq": r["seq"],
                "id": r["id"],
                "ts": r["ts"],
                "type": r["type"],
                "data": json.loads(r["data"]),
            }
            for r in rows
        ]

    def last_seq(self) -> int:
        rows = self._query("SELECT max(seq) AS m FROM events")
        return (rows[0]["m"] or 0) if rows else 0

    def print_jobs(self) -> list[dict[str, Any]]:
        """Every print job, oldest first: {id, printer, kind, key, ref, status}."""
        rows = self._query("SELECT id, printer, kind, key, ref, status FROM print_jobs ORDER BY id")
        return [dict(r) for r in rows]

    def product(self, barcode: str) -> dict[str, Any] | None:
        """The catalogue product as the store holds it, or None."""
        rows = self._query("SELECT body FROM products WHERE barcode = ?", (barcode,))
        return json.loads(rows[0]["body"]) if rows else None

    def order_status(self, order_id: str) -> str | None:
        rows = self._query("SELECT status FROM orders WHERE id = ?", (order_id,))
        return rows[0]["status"] if rows else None

    def settings(self) -> dict[str, Any]:
        """The agent's settings (business status, lockdown, installed hub keys...)."""
        rows = self._query("SELECT key, value FROM settings")
        return {r["key"]: json.loads(r["value"]) for r in rows}
