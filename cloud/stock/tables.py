"""The stock tables by name (made in cloud/db/stock_tables.py, schema version 5)."""

from __future__ import annotations

from cloud.db.tables import STOCK_TABLES

catalog, sku_map, stock_entries, stock_levels, stock_push = STOCK_TABLES
