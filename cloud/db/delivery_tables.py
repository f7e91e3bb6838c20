"""The tables of order delivery to stores and pickups back (schema version 3).

Built by a function so that tables.py and the migration step that adds them (an older
database) make exactly the same tables; a later change to them gets a step of its own.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, MetaData, String, Table, Text

TIME = String(32)
ID = String(64)


def delivery_tables(md: MetaData) -> tuple[Table, Table, Table]:
    # The last command that carried each order to its store, and what became of it, so
    # the dashboard can show "delivered to store". One row per order, overwritten.
    order_deliveries = Table(
        "order_deliveries",
        md,
        Column("store_id", ID, primary_key=True),
        Column("order_id", String(128), primary_key=True),
        Column("kind", String(32), nullable=False),  # created | updated | cancelled
        Column("cmd", String(32), nullable=False),  # orders.upsert | orders.cancel
        Column("jti", String(64), nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("last_attempt_at", TIME, nullable=False),
        Column("acked_at", TIME, nullable=True),
        # sending | acked | refused | no_reply | store_offline | unsent
        Column("outcome", String(32), nullable=False),
        Column("error", Text, nullable=True),
    )
    # Every status message of every store (online / offline, with its payload), as the
    # broker hands them to ONE hub of a group: the store's presence history.
    store_status_log = Table(
        "store_status_log",
        md,
        Column(
            "id",
            BigInteger().with_variant(Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        Column("store_id", ID, nullable=False),
        Column("at", TIME, nullable=False),
        Column("online", Boolean, nullable=False),
        Column("status", Text, nullable=False),
        Column("hub", String(100), nullable=False),  # the hub instance that logged it
        Index("ix_store_status_log_store_at", "store_id", "at"),
    )
    # pickup.completed events still to be told to the order service (and so the platform):
    # written when the event is first stored, done once the order service took it.
    pickup_jobs = Table(
        "pickup_jobs",
        md,
        Column("store_id", ID, primary_key=True),
        Column("event_id", String(128), primary_key=True),
        Column("order_id", String(128), nullable=False),
        Column("courier", String(200), nullable=False),
        Column("created_at", TIME, nullable=False),
        Column("next_at", TIME, nullable=False),
        Column("attempts", Integer, nullable=False, default=0),
        Column("done_at", TIME, nullable=True),
        Column("last_error", Text, nullable=True),
        Index("ix_pickup_jobs_due", "done_at", "next_at"),
    )
    return order_deliveries, store_status_log, pickup_jobs
