"""The entry_attempts table: made by migration step 2 on a version 1 database, as the
table definition has it; and what the entry page writes there."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select

from cloud.db.engine import Database
from cloud.db.entry_attempts import Attempt, granted_since, list_attempts, record_attempt
from cloud.db.tables import entry_attempts, metadata, schema_version
from tests.support.postgres import postgres_database

V1_TABLES = ("schema_version", "stores", "merchants", "merchant_stores", "events", "rejections")


async def test_a_version_1_database_gets_the_table(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        metadata.create_all(conn, tables=[metadata.tables[name] for name in V1_TABLES])
        conn.execute(schema_version.insert().values(version=1, applied_at="2025-01-01T00:00:00Z"))
    engine.dispose()

    db = await Database.open(f"sqlite:///{path}")
    try:
        async with db.read() as conn:
            columns = await conn.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("entry_attempts")}
            )
            indexes = await conn.run_sync(
                lambda c: {ix["name"] for ix in inspect(c).get_indexes("entry_attempts")}
            )
            versions = (await conn.execute(select(schema_version.c.version))).scalars().all()
        assert columns == {c.name for c in entry_attempts.columns}
        assert indexes == {ix.name for ix in entry_attempts.indexes}
        assert 2 in versions
        now = dt.datetime.now(dt.UTC)
        await record_attempt(db, Attempt("s1", "front", "wrong_answer", "c" * 64, "i" * 64), now)
        [row] = await list_attempts(db, "s1")
        assert (row["ok"], row["outcome"], row["unlocked"]) == (False, "wrong_answer", None)
    finally:
        await db.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.db'}"
    else:
        with postgres_database() as url:
            yield url


async def test_a_regular_is_a_visitor_granted_at_the_store_lately(db_url: str) -> None:
    db = await Database.open(db_url)
    try:
        now = dt.datetime.now(dt.UTC)
        rows = [
            (Attempt("s1", "front", "granted", "a", "ip1", "j1", True), now - dt.timedelta(days=3)),
            (Attempt("s1", "front", "wrong_answer", "b", "ip1"), now),
            (Attempt("s1", "front", "granted", "c", "ip1", "j2"), now - dt.timedelta(days=40)),
            (Attempt("s2", "front", "granted", "d", "ip1", "j3"), now),
        ]
        for attempt, at in rows:
            await record_attempt(db, attempt, at)
        since = now - dt.timedelta(days=30)
        assert await granted_since(db, "s1", "a", since)
        assert not await granted_since(db, "s1", "b", since)  # only wrong answers
        assert not await granted_since(db, "s1", "c", since)  # too long ago
        assert not await granted_since(db, "s1", "d", since)  # another store's
    finally:
        await db.close()
