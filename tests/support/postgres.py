"""A fresh, empty PostgreSQL database per test, on the machine's server (or skip).

    with postgres_database() as url:   # postgresql://postgres@127.0.0.1:5432/shopgate_t_1a2b...
        ...

The server is `$SHOPGATE_TEST_PG` (default postgresql://postgres@127.0.0.1:5432/test: a
local server with trust authentication). Without a reachable server, the test is skipped.
The database is dropped afterwards, with any connection still open to it.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

ADMIN_URL = os.environ.get("SHOPGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _run(sql: str) -> None:
    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(ADMIN_URL, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(go())


def with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@contextmanager
def postgres_database() -> Iterator[str]:
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        pytest.skip("asyncpg is not installed (pip install -e '.[test]')")
    name = f"shopgate_t_{uuid.uuid4().hex[:12]}"
    try:
        _run(f'CREATE DATABASE "{name}"')
    except Exception as e:  # unreachable server, no permission: not this test's concern
        pytest.skip(f"PostgreSQL at {ADMIN_URL} is not usable: {e}")
    try:
        yield with_database(ADMIN_URL, name)
    finally:
        _run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_database(url: str) -> None:
    """Drop the database of `url` now, cutting off whoever is connected to it."""
    name = url.rpartition("/")[2]
    _run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
