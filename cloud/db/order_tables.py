"""The tables of delivery-platform orders (cloud/orders, schema version 4).

Built by a function so that tables.py and the migration step that adds them to an older
database make exactly the same tables; a later change to them gets a step of its own.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

TIME = String(32)
ID = String(64)
ORDER_ID = String(128)
SERIAL = BigInteger().with_variant(Integer, "sqlite")


def order_tables(md: MetaData) -> tuple[Table, Table, Table, Table]:
    # One row per platform order. `id` is the hub's ("meituan-<order id>"), the one the
    # agent knows. A pending order's pickup code is unique in its store (the partial index);
    # once picked up or cancelled, the code may be given again.
    orders = Table(
        "orders",
        md,
        Column("id", ORDER_ID, primary_key=True),
        Column("store_id", ID, nullable=False),
        Column("platform", String(16), nullable=False),
        Column("platform_order_id", ID, nullable=False),
        Column("shop_id", ID, nullable=False),
        Column("view_id", ID, nullable=False),
        Column("day_seq", Integer, nullable=False),
        Column("pickup_code", String(16), nullable=False),
        Column("status", String(16), nullable=False),  # pending | picked_up | cancelled
        Column("platform_status", String(64), nullable=False),
        Column("note", Text, nullable=False),
        Column("items", Text, nullable=False),  # JSON list of {sku, barcode, name, qty, ...}
        Column("total", BigInteger, nullable=False),  # fen, as paid by the customer
        Column("fees", BigInteger, nullable=False),
        Column("commission", BigInteger, nullable=False),
        Column("courier", String(200), nullable=True),
        Column("created_at", TIME, nullable=False),
        Column("updated_at", TIME, nullable=False),
        Column("picked_up_at", TIME, nullable=True),
        Column("refunded_at", TIME, nullable=True),
        # JSON {address, contact, lat, lng} as the platform gives it (version 11).
        Column("delivery", Text, nullable=True),
        UniqueConstraint("platform", "platform_order_id"),
        Index("ix_orders_store_updated", "store_id", "updated_at"),
        Index(
            "uq_orders_store_open_code",
            "store_id",
            "pickup_code",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )
    # Every change of every order, with who caused it (a platform push, a store, the hub).
    order_log = Table(
        "order_log",
        md,
        Column("id", SERIAL, primary_key=True, autoincrement=True),
        Column("order_id", ORDER_ID, nullable=False),
        Column("at", TIME, nullable=False),
        Column("from_status", String(16), nullable=True),
        Column("to_status", String(16), nullable=False),
        Column("source", String(100), nullable=False),
        Column("detail", Text, nullable=False),
        Index("ix_order_log_order", "order_id", "id"),
    )
    # Calls the hub owes a platform (confirm an order, picking done, stock), written with
    # the change that causes them and retried until done: none is lost to a platform
    # outage or a hub restart, and the last error of each stays visible.
    platform_calls = Table(
        "platform_calls",
        md,
        Column("id", SERIAL, primary_key=True, autoincrement=True),
        Column("platform", String(16), nullable=False),
        Column("store_id", ID, nullable=False),
        Column("order_id", ORDER_ID, nullable=True),
        Column("kind", String(32), nullable=False),  # confirm_order | picking_done | update_stock
        Column("args", Text, nullable=False),  # JSON
        Column("status", String(16), nullable=False),  # pending | done | failed | dropped
        Column("attempts", Integer, nullable=False),
        Column("error", Text, nullable=True),
        Column("next_try", TIME, nullable=False),
        Column("created_at", TIME, nullable=False),
        Column("updated_at", TIME, nullable=False),
        Index("ix_platform_calls_due", "status", "next_try"),
        Index("ix_platform_calls_order", "order_id"),
    )
    # A platform's refund or cancellation of an order already picked up: the goods are
    # gone, so it is money to settle, not an order to withdraw. One per order.
    refunds = Table(
        "refunds",
        md,
        Column("id", SERIAL, primary_key=True, autoincrement=True),
        Column("order_id", ORDER_ID, nullable=False, unique=True),
        Column("store_id", ID, nullable=False),
        Column("platform", String(16), nullable=False),
        Column("at", TIME, nullable=False),
        Column("amount", BigInteger, nullable=False),  # fen: the order's total
        Column("source", String(100), nullable=False),
        Column("reason", Text, nullable=False),
        Index("ix_refunds_store_at", "store_id", "at"),
    )
    return orders, order_log, platform_calls, refunds
