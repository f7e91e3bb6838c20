"""The tables of self-checkout payments taken through the hub (cloud/payments), schema version 8.

Built by a function so that tables.py and the migration step that adds them to an older
database make exactly the same tables; a later change to them gets a step of its own.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, MetaData, String, Table, Text

TIME = String(32)
ID = String(64)


def payment_tables(md: MetaData) -> tuple[Table, ...]:
    # One row per payment a checkout asked for. Money in fen (integer cents): a float
    # never decides whether an amount matches.
    payments = Table(
        "payments",
        md,
        Column("id", ID, primary_key=True),  # unguessable: it is the pay page's address
        Column("store_id", ID, nullable=False),
        Column("checkout", ID, nullable=False),
        Column("cart", String(128), nullable=False),
        Column("amount_fen", BigInteger, nullable=False),
        Column("items", Text, nullable=False),  # JSON list as the store sent it
        Column("status", String(16), nullable=False),  # pending | paid | cancelled
        Column("created_at", TIME, nullable=False),
        Column("expires_at", TIME, nullable=False),
        Column("paid_at", TIME, nullable=True),
        Column("method", String(32), nullable=True),  # demo | wechat | alipay ...
        Column("provider_ref", String(128), nullable=True),  # the provider's transaction id
        # checkout.paid to the store: sending | acked | refused | no_reply | unsent
        Column("delivery", String(16), nullable=True),
        Column("delivery_error", Text, nullable=True),
        Column("delivered_at", TIME, nullable=True),
        Index("ix_payments_store_created", "store_id", "created_at"),
    )
    # Every provider notification, accepted or not: a refused one is evidence to keep.
    payment_notifications = Table(
        "payment_notifications",
        md,
        Column(
            "id",
            BigInteger().with_variant(Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        Column("payment_id", String(128), nullable=False),
        Column("at", TIME, nullable=False),
        Column("ok", Boolean, nullable=False),
        Column("outcome", String(32), nullable=False),
        Column("peer", String(64), nullable=False),
        Column("body", Text, nullable=False),  # first 4 KiB as received
        Index("ix_payment_notifications_payment", "payment_id"),
    )
    return payments, payment_notifications
