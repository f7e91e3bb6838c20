"""The hub's database: one SQLAlchemy async engine, SQLite (aiosqlite) or PostgreSQL (asyncpg).

`Database.open(url)` takes the URL an operator writes (`postgresql://user@host/db`,
`sqlite:///path/hub.db`, or a bare file path), picks the async driver, brings the schema
up to date and returns the open database; `close()` may be called twice. Queries use
`read()` and `write()`; on SQLite, writes are taken one at a time by the hub itself
(SQLite has one writer; queueing here beats "database is locked" there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from cloud.db.errors import DatabaseError
from cloud.db.migrations import migrate

log = logging.getLogger(__name__)

Dialect = Literal["sqlite", "postgresql"]


def driver_url(url: str) -> URL:
    """The SQLAlchemy URL, with the async driver, for what an operator wrote."""
    if "://" not in url:  # a bare path: an SQLite file
        return URL.create("sqlite+aiosqlite", database=str(Path(url).absolute()))
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(f"{_safe(url)} is not a database URL") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres") and driver in ("", "asyncpg"):
        return parsed.set(drivername="postgresql+asyncpg")
    if backend == "sqlite" and driver in ("", "aiosqlite"):
        if parsed.database in (None, "", ":memory:"):
            raise DatabaseError("an SQLite database needs a file: sqlite:///path/to/hub.db")
        return parsed.set(drivername="sqlite+aiosqlite")
    raise DatabaseError(
        f"unsupported database {_safe(url)}: use postgresql://user@host/db or sqlite:///path"
    )


def _safe(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "the given URL" if "@" in url else repr(url)


class Database:
    def __init__(self, engine: AsyncEngine, dialect: Dialect) -> None:
        self.engine = engine
        self.dialect: Dialect = dialect
        self._write_lock = asyncio.Lock() if dialect == "sqlite" else None
        self._closed = False

    @classmethod
    async def open(cls, url: str) -> Database:
        target = driver_url(url)
        dialect: Dialect = "sqlite" if target.get_backend_name() == "sqlite" else "postgresql"
        if dialect == "sqlite":
            path = Path(target.database or "")
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
            engine = create_async_engine(target)
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            try:
                engine = create_async_engine(target, pool_pre_ping=True)
            except ImportError:
                raise DatabaseError(
                    "PostgreSQL needs the asyncpg package: pip install 'shopgate[postgresql]'"
                ) from None
        db = cls(engine, dialect)
        try:
            async with db.write() as conn:
                version = await conn.run_sync(migrate)
        except DatabaseError:
            await db.close()
            raise
        except (SQLAlchemyError, OSError) as e:
            await db.close()
            where = target.render_as_string(hide_password=True)
            raise DatabaseError(f"cannot open the database {where}: {_reason(e)}") from e
        where = target.render_as_string(hide_password=True)
        log.info("database ready", extra={"db": dialect, "url": where, "schema_version": version})
        return db

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self.engine.dispose()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        async with contextlib.AsyncExitStack() as stack:
            if self._write_lock is not None:
                await stack.enter_async_context(self._write_lock)
            conn = await stack.enter_async_context(self.engine.begin())
            yield conn

    def insert(self, table: Table) -> Any:
        """An INSERT with this database's `on_conflict_do_nothing/do_update`."""
        return (sqlite.insert if self.dialect == "sqlite" else postgresql.insert)(table)

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.execute(text("SELECT 1"))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL: readers never wait for the writer. synchronous=FULL: a batch is on disk before the
    # hub answers for it, since the agent then forgets it (one fsync per batch, not per event).
    cursor = dbapi_connection.cursor()
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=FULL",
        "PRAGMA busy_timeout=5000",
        "PRAGMA foreign_keys=ON",
    ):
        cursor.execute(pragma)
    cursor.close()


def _reason(e: BaseException) -> str:
    orig = getattr(e, "orig", None) or e
    message = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return message
