"""Hub tests run against SQLite and PostgreSQL: `db_url` is parametrized over both and
`db` is an opened, empty database of either kind."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from cloud.db.engine import Database
from cloud.db.tables import metadata
from tests.support.postgres import postgres_database


@pytest.fixture(scope="module")
def shared_pg_url() -> Iterator[str]:
    # One database per module, emptied before each test: creating one takes ~0.3 s.
    with postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub' / 'hub.db'}"
    return request.getfixturevalue("shared_pg_url")


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = await Database.open(db_url)
    if database.dialect == "postgresql":
        async with database.write() as conn:
            names = ", ".join(t.name for t in metadata.sorted_tables if t.name != "schema_version")
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    yield database
    await database.close()
