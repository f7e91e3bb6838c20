"""The table of guess counts (cloud/limits/counters.py), schema version 9.

Built by a function so that tables.py and the migration step that adds it to an older
database make exactly the same table; a later change gets a step of its own.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
)


def limit_tables(md: MetaData) -> tuple[Table, Table]:
    # One row per thing counted: a visitor, an address, a door. Times are epoch
    # milliseconds, so that a window's end is arithmetic in one statement on both
    # databases. `subject` is a keyed hash (addresses and visitors are not kept).
    guess_limits = Table(
        "guess_limits",
        md,
        Column("scope", String(40), nullable=False),  # entry.visitor, api.token, ...
        Column("subject", String(64), nullable=False),
        Column("hits", Integer, nullable=False),  # counted in the current window
        Column("window_ms", BigInteger, nullable=False),  # its length (doubles when escalating)
        Column("resets_at", BigInteger, nullable=False),  # its end
        Column("full_at", BigInteger, nullable=True),  # when hits last reached the limit
        PrimaryKeyConstraint("scope", "subject"),
        Index("ix_guess_limits_resets_at", "resets_at"),
    )
    # The key the subjects are hashed with: made by the first hub to count anything,
    # shared through the database by every hub process on it.
    limit_keys = Table(
        "limit_keys",
        md,
        Column("name", String(32), primary_key=True),
        Column("secret", String(128), nullable=False),
    )
    return guess_limits, limit_keys
