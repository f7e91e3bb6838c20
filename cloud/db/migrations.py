"""Bringing a database's schema up to the tables in cloud/db/tables.py.

A fresh database is built whole from the table definitions and stamped SCHEMA_VERSION.
An older one gets each step after its version, in order, in the same transaction (both
SQLite and PostgreSQL change schemas transactionally). A database newer than this hub
is refused rather than misread.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, func, inspect, select, text

from cloud.db.errors import DatabaseError
from cloud.db.tables import metadata, schema_version
from cloud.db.times import now_text

SCHEMA_VERSION = 1

# STEPS[n] turns a version n-1 database into version n.
STEPS: dict[int, Callable[[Connection], None]] = {}

# Any fixed number: hubs starting at once on one PostgreSQL database take turns migrating.
_PG_MIGRATION_LOCK = 0x5347_4855  # "SGHU"


def migrate(conn: Connection) -> int:
    """Create or upgrade the schema; returns the version the database is now at."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    inspector = inspect(conn)
    if not inspector.has_table(schema_version.name):
        strangers = [t for t in metadata.tables if inspector.has_table(t)]
        if strangers:
            raise DatabaseError(
                f"the database has hub tables ({', '.join(strangers)}) but no schema_version "
                "table; it was not made by shopgate-hub"
            )
        metadata.create_all(conn)
        _stamp(conn, SCHEMA_VERSION)
        return SCHEMA_VERSION
    current = conn.execute(select(func.max(schema_version.c.version))).scalar_one() or 0
    if current > SCHEMA_VERSION:
        raise DatabaseError(
            f"the database schema is version {current}, newer than this hub's "
            f"({SCHEMA_VERSION}); run a newer shopgate-hub"
        )
    for version in range(current + 1, SCHEMA_VERSION + 1):
        STEPS[version](conn)
        _stamp(conn, version)
    return SCHEMA_VERSION


def _stamp(conn: Connection, version: int) -> None:
    conn.execute(schema_version.insert().values(version=version, applied_at=now_text()))
