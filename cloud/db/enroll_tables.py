"""Enrollment codes and the keys stores enrolled with (cloud/enrollment), schema version 10.

Built by a function so that tables.py and the migration step that adds them to an older
database make exactly the same tables; a later change gets a step of its own.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, MetaData, String, Table, Text


def enroll_tables(md: MetaData) -> tuple[Table, Table]:
    # A code is kept only as its SHA-256: a copy of the database enrolls nothing. Times
    # are epoch milliseconds, so "unused and not expired" is one atomic UPDATE on both
    # databases, whichever hub process takes the request.
    enroll_codes = Table(
        "enroll_codes",
        md,
        Column("code_hash", String(64), primary_key=True),
        Column("store_id", String(64), nullable=False),
        Column("created_ms", BigInteger, nullable=False),
        Column("expires_ms", BigInteger, nullable=False),
        Column("created_by", String(64), nullable=False),
        Column("used_ms", BigInteger, nullable=True),
        Column("used_from", String(64), nullable=True),  # the client's address bucket
        Index("ix_enroll_codes_store", "store_id"),
    )
    # The store's own Ed25519 public key, sent with its code: the hub knows the device,
    # not only a token that could be copied.
    agent_keys = Table(
        "agent_keys",
        md,
        Column("store_id", String(64), primary_key=True),
        Column("public_key", Text, nullable=False),  # PEM
        Column("fingerprint", String(64), nullable=False),
        Column("enrolled_ms", BigInteger, nullable=False),
    )
    return enroll_codes, agent_keys
