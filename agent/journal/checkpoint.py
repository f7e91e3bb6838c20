"""Folding the WAL back into the database, off the commit path.

SQLite's automatic checkpoint runs inside whichever commit crosses 1,000 WAL pages and
fsyncs the whole database there: measured here, that put 10-15 ms into one access
decision in a hundred. So the writer turns it off and this thread checkpoints instead,
on its own connection, PASSIVE (it never blocks the writer), at most once a second
after commits happened.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

INTERVAL_S = 1.0


class Checkpointer(threading.Thread):
    def __init__(self, path: Path) -> None:
        super().__init__(name=f"journal-checkpoint:{path.name}", daemon=True)
        self._path = path
        self._dirty = threading.Event()
        self._halt = threading.Event()
        self.checkpoints = 0

    def committed(self) -> None:
        self._dirty.set()

    def stop(self) -> None:
        self._halt.set()
        self._dirty.set()
        if self.is_alive():
            self.join(timeout=5)

    def run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 1000")
            while not self._halt.is_set():
                self._dirty.wait()
                if self._halt.wait(INTERVAL_S):  # let a burst finish before copying
                    break
                self._dirty.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error as exc:  # the writer's final checkpoint covers it
                    log.warning("journal checkpoint skipped: %s", exc)
        finally:
            conn.close()
