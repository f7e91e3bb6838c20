"""Every table of the hub, defined once for SQLite and PostgreSQL alike (SQLAlchemy Core).

Changing a table here means a new step in cloud/db/migrations.py: `create_all` builds a
fresh database from these definitions, the steps bring an existing one up to them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from cloud.db.alert_tables import alert_tables
from cloud.db.delivery_tables import delivery_tables
from cloud.db.enroll_tables import enroll_tables
from cloud.db.erp_tables import erp_tables
from cloud.db.limit_tables import limit_tables
from cloud.db.order_tables import order_tables
from cloud.db.payment_tables import payment_tables
from cloud.db.stock_tables import stock_tables

# Named constraints, so later migrations can refer to them on either database.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Times are stored as RFC 3339 UTC text with microseconds ("2025-01-02T03:04:05.000006Z"):
# they sort as text and read the same on both databases.
TIME = String(32)
ID = String(64)

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", TIME, nullable=False),
)

stores = Table(
    "stores",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", Text, nullable=False, default=""),
    # SHA-256 hex of the bearer token; the token itself is never stored.
    Column("token_hash", String(64), nullable=False, index=True),
    Column("updated_at", TIME, nullable=False),
)

merchants = Table(
    "merchants",
    metadata,
    Column("id", ID, primary_key=True),
    Column("token_hash", String(64), nullable=False, index=True),
    Column("updated_at", TIME, nullable=False),
)

merchant_stores = Table(
    "merchant_stores",
    metadata,
    Column("merchant_id", ID, ForeignKey("merchants.id", ondelete="CASCADE"), nullable=False),
    Column("store_id", ID, nullable=False),
    PrimaryKeyConstraint("merchant_id", "store_id"),
)

# The agents' events (CONTRACTS section 4). `envelope` is the event exactly as the agent
# sent it (compact JSON text); the other columns are copies for querying.
events = Table(
    "events",
    metadata,
    Column("store_id", ID, nullable=False),
    Column("id", String(128), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("ts", TIME, nullable=False),
    Column("type", String(100), nullable=False),
    Column("envelope", Text, nullable=False),
    Column("received_at", TIME, nullable=False),
    PrimaryKeyConstraint("store_id", "id"),
    Index("ix_events_store_seq", "store_id", "seq"),
)

# Requests refused for what they carried (a malformed batch, a body too large), so that an
# operator can see a misbehaving agent or webhook; the body itself is not kept.
rejections = Table(
    "rejections",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("store_id", ID, nullable=False),
    Column("at", TIME, nullable=False),
    Column("endpoint", String(200), nullable=False),
    Column("status", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("body_bytes", BigInteger, nullable=False),
    Index("ix_rejections_store_at", "store_id", "at"),
)

# Answers given on the customer entry page (cloud/web/entry.py), one row per answer checked
# (or refused for too many wrong ones); wrong answers are counted from here to pause a
# guesser. The typed answer is never kept; visitor and address are keyed hashes.
entry_attempts = Table(
    "entry_attempts",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("store_id", ID, nullable=False),
    Column("door", ID, nullable=False),
    Column("at", TIME, nullable=False),
    Column("ok", Boolean, nullable=False),
    # granted | wrong_answer | rate_limited
    Column("outcome", String(32), nullable=False),
    Column("client_hash", String(64), nullable=False),
    Column("ip_hash", String(64), nullable=False),
    Column("pass_jti", String(64), nullable=True),
    # Whether the door opened at once (None: no unlock was tried, the agent being offline).
    Column("unlocked", Boolean, nullable=True),
    Index("ix_entry_attempts_client", "store_id", "client_hash", "at"),
    Index("ix_entry_attempts_ip", "store_id", "ip_hash", "at"),
)

# Order delivery to stores, store presence, pickups back (cloud/delivery.py, cloud/pickups.py).
order_deliveries, store_status_log, pickup_jobs = delivery_tables(metadata)

# Delivery-platform orders, their log, calls owed to platforms, refunds (cloud/orders).
orders, order_log, platform_calls, refunds = order_tables(metadata)

# Later schema versions: each module's function makes its tables (see cloud/db/migrations.py).
STOCK_TABLES = stock_tables(metadata)  # 5: catalog, stock ledger, platform stock pushes
ERP_TABLES = erp_tables(metadata)  # 6: ERP outbox and sync state
ALERT_TABLES = alert_tables(metadata)  # 7: DingTalk robots and the alert queue
PAYMENT_TABLES = payment_tables(metadata)  # 8: self-checkout payments
LIMIT_TABLES = limit_tables(metadata)  # 9: guess counts (cloud/limits)
ENROLL_TABLES = enroll_tables(metadata)  # 10: enrollment codes, stores' keys (cloud/enrollment)
