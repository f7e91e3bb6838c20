"""The tables of the hub catalog, stock ledger and platform stock pushes (cloud/stock),
schema version 5.

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
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

TIME = String(32)
ID = String(64)
BARCODE = String(64)
SERIAL = BigInteger().with_variant(Integer, "sqlite")


def stock_tables(md: MetaData) -> tuple[Table, ...]:
    # A store's products, the barcode being a product's identity. Money in fen.
    catalog = Table(
        "catalog",
        md,
        Column("store_id", ID, nullable=False),
        Column("barcode", BARCODE, nullable=False),
        Column("name", Text, nullable=False),
        Column("price", BigInteger, nullable=False),
        Column("cost", BigInteger, nullable=True),
        Column("shelf", String(32), nullable=False),  # 货架号
        Column("low_stock", Integer, nullable=True),  # 库存预警: alert at or below this
        Column("updated_at", TIME, nullable=False),
        PrimaryKeyConstraint("store_id", "barcode"),
    )
    # What each platform lists the store's products as. `barcode` is empty while the
    # platform's SKU matches no product of the catalog (listed for the owner to fix).
    sku_map = Table(
        "sku_map",
        md,
        Column("store_id", ID, nullable=False),
        Column("platform", String(16), nullable=False),
        Column("sku", ID, nullable=False),  # the platform's SKU id (the merchant's code)
        Column("upc", BARCODE, nullable=False),  # the barcode the platform lists, maybe ""
        Column("barcode", BARCODE, nullable=False),  # the catalog product it is, or ""
        Column("name", Text, nullable=False),
        Column("updated_at", TIME, nullable=False),
        PrimaryKeyConstraint("store_id", "platform", "sku"),
        Index("ix_sku_map_barcode", "store_id", "barcode"),
    )
    # Every movement of stock. Stock is the sum of `delta`; `source` names what caused it
    # ("event:<id>", "order:<id>:pickup:<barcode>", ...) and is booked once per store.
    # `version` is the level's version after this entry (see stock_levels).
    stock_entries = Table(
        "stock_entries",
        md,
        Column("id", SERIAL, primary_key=True, autoincrement=True),
        Column("store_id", ID, nullable=False),
        Column("barcode", BARCODE, nullable=False),
        Column("delta", BigInteger, nullable=False),
        Column("reason", String(16), nullable=False),
        Column("source", String(200), nullable=False),
        Column("ref", String(128), nullable=False),  # an order the movement belongs to, or ""
        Column("note", Text, nullable=False),
        Column("qty_after", BigInteger, nullable=False),
        Column("version", BigInteger, nullable=False),
        Column("at", TIME, nullable=False),
        UniqueConstraint("store_id", "source"),
        Index("ix_stock_entries_item", "store_id", "barcode", "id"),
        Index("ix_stock_entries_ref", "store_id", "ref"),
    )
    # The running quantity per item, updated in the entry's transaction so reads are cheap.
    # `version` counts the item's entries; its row lock orders concurrent bookings, so a
    # higher version is always the later quantity (what stock pushes compare).
    stock_levels = Table(
        "stock_levels",
        md,
        Column("store_id", ID, nullable=False),
        Column("barcode", BARCODE, nullable=False),
        Column("qty", BigInteger, nullable=False),
        Column("version", BigInteger, nullable=False),
        Column("updated_at", TIME, nullable=False),
        PrimaryKeyConstraint("store_id", "barcode"),
    )
    # What each platform should show and was last told, per listed SKU: `wanted_*` is
    # the latest quantity to send, `sent_*` the last one the platform took. Pending while
    # wanted_version > sent_version; a claim is a lease (`lease_until`), so two hubs never
    # send one SKU at once and an older quantity never follows a newer one.
    stock_push = Table(
        "stock_push",
        md,
        Column("store_id", ID, nullable=False),
        Column("platform", String(16), nullable=False),
        Column("sku", ID, nullable=False),
        Column("barcode", BARCODE, nullable=False),
        Column("wanted_qty", BigInteger, nullable=False),
        Column("wanted_version", BigInteger, nullable=False),
        Column("sent_qty", BigInteger, nullable=True),
        Column("sent_version", BigInteger, nullable=False),
        Column("attempts", Integer, nullable=False),  # failed tries since the last success
        Column("error", Text, nullable=True),
        Column("next_try", TIME, nullable=False),
        Column("lease_until", TIME, nullable=False),
        Column("pushed_at", TIME, nullable=True),
        Column("updated_at", TIME, nullable=False),
        PrimaryKeyConstraint("store_id", "platform", "sku"),
        Index("ix_stock_push_due", "wanted_version", "sent_version", "next_try"),
    )
    return catalog, sku_map, stock_entries, stock_levels, stock_push
