"""The store's own stock count: moved only with its `stock.changed` event, in one
transaction, and never computed twice from the same count when two services sell at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.clock import Clock
from agent.journal import Journal
from agent.services.stock import LocalStock, StockMove

COLA = "6901028075022"


async def open_journal(path: Path) -> Journal:
    return await Journal.open(path, "demo-001", Clock())


async def test_concurrent_sales_of_one_barcode_count_down_one_by_one(tmp_path: Path) -> None:
    journal = await open_journal(tmp_path / "journal.db")
    try:
        stock = LocalStock(journal, {})
        await stock.set_counts({COLA: 10})
        sells = [
            stock.move([StockMove(COLA, -1, reason, f"{reason}-{i}")])
            for i, reason in enumerate(["vend", "sale", "locker", "vend", "sale"])
        ]
        written = await asyncio.gather(*sells)
        after = sorted(e.data["qty_after"] for batch in written for e in batch)
        assert after == [5, 6, 7, 8, 9]  # each sale saw the one before it
        assert stock.qty(COLA) == 5
    finally:
        await journal.close()
    # The count survives a restart exactly as journaled.
    journal = await open_journal(tmp_path / "journal.db")
    try:
        state = await journal.load_state()
        assert LocalStock(journal, state.settings).qty(COLA) == 5
    finally:
        await journal.close()


async def test_a_move_that_cannot_be_journaled_moves_nothing(tmp_path: Path) -> None:
    journal = await open_journal(tmp_path / "journal.db")
    stock = LocalStock(journal, {})
    await stock.set_counts({COLA: 3})
    await journal.close()
    with pytest.raises(Exception):  # noqa: B017 - the closed journal's own error
        await stock.move([StockMove(COLA, -1, "sale", "s-1")])
    assert stock.qty(COLA) == 3


def test_an_unknown_reason_is_refused() -> None:
    with pytest.raises(ValueError, match="reason"):
        StockMove(COLA, -1, "stolen", "x")


async def test_an_uncounted_barcode_reports_no_made_up_count(tmp_path: Path) -> None:
    journal = await open_journal(tmp_path / "journal.db")
    try:
        stock = LocalStock(journal, {})
        [changed] = await stock.move([StockMove(COLA, -1, "vend", "v-1")])
        assert changed.data["qty_after"] is None and changed.data["delta"] == -1
        assert stock.qty(COLA) is None
        await stock.set_counts({COLA: 12})  # a stock-take, or the hub's count
        [changed] = await stock.move([StockMove(COLA, -1, "vend", "v-2")])
        assert changed.data["qty_after"] == 11
    finally:
        await journal.close()
