"""The tables of the ERP outbox and sync state (cloud/erp), schema version 6.

Built by a function so that tables.py and the migration step that adds them to an older
database make exactly the same tables; a later change to them gets a step of its own.
"""

from __future__ import annotations

from sqlalchemy import MetaData, Table


def erp_tables(md: MetaData) -> tuple[Table, ...]:
    return ()
