"""The hub's catalog, stock ledger and platform stock pushes (docs/stock.md)."""
