"""The tables of the ERP outbox and sync state (cloud/erp), schema version 6.

Built by a function so that tables.py and the migration step that adds them to an older
database make exactly the same tables; a later change to them gets a step of its own.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

TIME = String(32)
ID = String(64)
SERIAL = BigInteger().with_variant(Integer, "sqlite")


def erp_tables(md: MetaData) -> tuple[Table, ...]:
    # Every document owed to an ERP, written once under a unique key ("wdt:trade:<order>")
    # so nothing is queued (or sent) twice, and kept until sent: retried with backoff while
    # the ERP is away or refuses, its last error visible. `after` names a row that must be
    # sent first (a refund after its sale). `grp` coalesces stock uploads: one pending row
    # per item, which sends the item's quantity as it is when sent. A claim moves
    # next_try ahead (a lease), so hubs sharing a database never send one row at once.
    erp_outbox = Table(
        "erp_outbox",
        md,
        Column("id", SERIAL, primary_key=True, autoincrement=True),
        Column("key", String(200), nullable=False, unique=True),
        Column("erp", String(8), nullable=False),
        Column("store_id", ID, nullable=False),
        # sales_order | refund_order | expenses | products | stock_upload
        Column("kind", String(16), nullable=False),
        Column("ref", String(128), nullable=False),  # the order, sale or item it is about
        Column("payload", Text, nullable=False),  # JSON
        Column("status", String(12), nullable=False),  # pending | done | failed | unsupported
        Column("attempts", Integer, nullable=False),
        Column("refusals", Integer, nullable=False),
        Column("error", Text, nullable=True),
        Column("after", String(200), nullable=True),
        Column("grp", String(200), nullable=True),
        Column("next_try", TIME, nullable=False),
        Column("created_at", TIME, nullable=False),
        Column("updated_at", TIME, nullable=False),
        Column("done_at", TIME, nullable=True),
        Index("ix_erp_outbox_due", "status", "next_try"),
        Index("ix_erp_outbox_store", "store_id", "status"),
        Index("ix_erp_outbox_grp", "grp", "status"),
    )
    return (erp_outbox,)
