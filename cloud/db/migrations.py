"""Bringing a database's schema up to the tables in cloud/db/tables.py.

A fresh database is built whole from the table definitions and stamped SCHEMA_VERSION.
An older one gets each step after its version, in order, in the same transaction (both
SQLite and PostgreSQL change schemas transactionally). A database newer than this hub
is refused rather than misread.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    func,
    inspect,
    select,
    text,
)

from cloud.db.alert_tables import alert_tables
from cloud.db.delivery_tables import delivery_tables
from cloud.db.enroll_tables import enroll_tables
from cloud.db.erp_tables import erp_tables
from cloud.db.errors import DatabaseError
from cloud.db.limit_tables import limit_tables
from cloud.db.order_tables import order_tables
from cloud.db.payment_tables import payment_tables
from cloud.db.stock_tables import stock_tables
from cloud.db.tables import metadata, schema_version
from cloud.db.times import now_text

SCHEMA_VERSION = 11


def _add_entry_attempts(conn: Connection) -> None:
    # The table as version 2 made it, spelled out here: tables.py may change it later,
    # with a step of its own.
    v2 = MetaData(naming_convention=metadata.naming_convention)
    Table(
        "entry_attempts",
        v2,
        Column(
            "id",
            BigInteger().with_variant(Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        Column("store_id", String(64), nullable=False),
        Column("door", String(64), nullable=False),
        Column("at", String(32), nullable=False),
        Column("ok", Boolean, nullable=False),
        Column("outcome", String(32), nullable=False),
        Column("client_hash", String(64), nullable=False),
        Column("ip_hash", String(64), nullable=False),
        Column("pass_jti", String(64), nullable=True),
        Column("unlocked", Boolean, nullable=True),
        Index("ix_entry_attempts_client", "store_id", "client_hash", "at"),
        Index("ix_entry_attempts_ip", "store_id", "ip_hash", "at"),
    )
    v2.create_all(conn)


# STEPS[n] turns a version n-1 database into version n.
def _add_delivery_tables(conn: Connection) -> None:
    v3 = MetaData(naming_convention=metadata.naming_convention)
    delivery_tables(v3)
    v3.create_all(conn)


def _add_order_tables(conn: Connection) -> None:
    v4 = MetaData(naming_convention=metadata.naming_convention)
    order_tables(v4)
    v4.create_all(conn)


def _adding(make_tables: Callable[[MetaData], tuple[Table, ...]]) -> Callable[[Connection], None]:
    """A step that adds the tables one function makes (as it made them at that version)."""

    def step(conn: Connection) -> None:
        md = MetaData(naming_convention=metadata.naming_convention)
        make_tables(md)
        md.create_all(conn)

    return step


def _add_order_delivery(conn: Connection) -> None:
    # Version 4 builds `orders` with today's definition, which has the column already.
    if "delivery" not in {c["name"] for c in inspect(conn).get_columns("orders")}:
        conn.execute(text("ALTER TABLE orders ADD COLUMN delivery TEXT"))


STEPS: dict[int, Callable[[Connection], None]] = {
    2: _add_entry_attempts,
    3: _add_delivery_tables,
    4: _add_order_tables,
    5: _adding(stock_tables),
    6: _adding(erp_tables),
    7: _adding(alert_tables),
    8: _adding(payment_tables),
    9: _adding(limit_tables),
    10: _adding(enroll_tables),
    11: _add_order_delivery,
}

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
