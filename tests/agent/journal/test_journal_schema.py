from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from agent.clock import Clock
from agent.journal import Journal, JournalError
from agent.journal.schema import MIGRATIONS, SCHEMA_VERSION, migrate


def pragma(path: Path, name: str) -> object:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]


async def test_new_database_is_created_at_the_current_version(db_path: Path) -> None:
    async with await Journal.open(db_path, "demo-001", Clock()):
        pass
    assert pragma(db_path, "user_version") == SCHEMA_VERSION
    assert pragma(db_path, "journal_mode") == "wal"
    assert pragma(db_path, "auto_vacuum") == 2  # INCREMENTAL: maintenance can shrink the file


async def test_older_database_is_migrated_and_keeps_its_events(db_path: Path) -> None:
    with sqlite3.connect(db_path, isolation_level=None) as conn:
        migrate(conn, MIGRATIONS[:1])  # what the first release created: the outbox only
        conn.execute(
            "INSERT INTO events (id, ts, type, data) VALUES"
            " ('01M8000000000000000000000A', '2026-01-01T00:00:00.000Z', 'agent.started', '{}')"
        )
    assert pragma(db_path, "user_version") == 1

    async with await Journal.open(db_path, "demo-001", Clock()) as j:
        old = await j.events_after(0, 10)
        new = await j.append("door.opened", {})
        state = await j.load_state()

    assert [e.type for e in old] == ["agent.started"]
    assert new.seq == 2
    assert state.orders == {} and state.last_seq == 2
    assert pragma(db_path, "user_version") == SCHEMA_VERSION


async def test_database_from_a_newer_agent_is_refused_untouched(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE future (x)")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(JournalError) as err:
        await Journal.open(db_path, "demo-001", Clock())
    assert err.value.code == "schema_too_new"
    assert "newer agent" in str(err.value)
    assert pragma(db_path, "user_version") == SCHEMA_VERSION + 1


async def test_a_file_that_is_not_a_journal_is_a_clear_error(db_path: Path) -> None:
    junk = b"this is not an SQLite database, it is a config file" * 100
    await asyncio.to_thread(db_path.write_bytes, junk)
    with pytest.raises(JournalError) as err:
        await Journal.open(db_path, "demo-001", Clock())
    assert err.value.code == "corrupt"
    assert str(db_path) in str(err.value)


def test_a_failing_migration_step_leaves_the_previous_version(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with sqlite3.connect(path, isolation_level=None) as conn:
        with pytest.raises(sqlite3.OperationalError):
            migrate(conn, [*MIGRATIONS, "CREATE TABLE t (x); CREATE TABLE t (x)"])
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "t" not in tables
