"""Version 11 adds orders.delivery: a version-10 database is brought up to it, its
orders kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cloud.db.engine import Database
from cloud.db.migrations import SCHEMA_VERSION


async def test_a_version_10_database_gets_the_delivery_column(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    db = await Database.open(f"sqlite:///{path}")
    await db.close()
    con = sqlite3.connect(path)
    con.execute("ALTER TABLE orders DROP COLUMN delivery")  # as version 10 made it
    con.execute("UPDATE schema_version SET version = 10 WHERE version = 11")
    con.commit()
    con.close()

    db = await Database.open(f"sqlite:///{path}")
    await db.close()
    con = sqlite3.connect(path)
    columns = {r[1] for r in con.execute("PRAGMA table_info(orders)")}
    version = con.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    con.close()
    assert "delivery" in columns and version == SCHEMA_VERSION == 11
