"""A full disk fails the writes of that moment loudly, loses nothing, and heals itself.

`PRAGMA max_page_count` on the writer's connection makes SQLite answer SQLITE_FULL
exactly as it does when the disk runs out.
"""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from agent.journal import Journal, JournalError, PutSetting


async def limit_pages(journal: Journal, extra: int | None) -> None:
    def set_limit(conn: sqlite3.Connection) -> None:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        limit = pages + extra if extra is not None else 1 << 30
        conn.execute(f"PRAGMA max_page_count = {limit}")

    await journal._run_in_writer(set_limit)


async def test_disk_full_fails_the_whole_batch_then_recovers(journal: Journal) -> None:
    kept = await journal.append("sale.completed", {"n": 0})
    await limit_pages(journal, extra=0)

    big = "x" * 20_000  # needs new pages
    results = await asyncio.gather(
        *(
            journal.append("sale.completed", {"n": i, "pad": big}, ops=[PutSetting(f"k{i}", i)])
            for i in range(1, 6)
        ),
        return_exceptions=True,
    )
    assert all(isinstance(r, JournalError) and r.code == "disk_full" for r in results)
    assert "full" in str(results[0])
    # Nothing of the failed batch was half-written: no event, no setting.
    assert [e.seq for e in await journal.events_after(0, 100)] == [kept.seq]
    assert (await journal.load_state()).settings == {}

    await limit_pages(journal, extra=None)  # space frees up
    after = await journal.append("sale.completed", {"n": 6, "pad": big}, ops=[PutSetting("k", 1)])
    assert after.seq > kept.seq
    assert (await journal.load_state()).settings == {"k": 1}
    assert [e.data["n"] for e in await journal.events_after(0, 100)] == [0, 6]


async def test_maintenance_on_a_full_disk_raises_instead_of_returning_nothing(
    journal: Journal,
) -> None:
    await journal.append_many([("door.opened", {"pad": "x" * 2000}) for _ in range(50)])
    await limit_pages(journal, extra=0)
    with pytest.raises(JournalError) as err:
        await journal.append("door.opened", {"pad": "y" * 50_000})
    assert err.value.code == "disk_full"
    # Deleting and reading still work on a full disk.
    await journal.mark_delivered(list(range(1, 51)))
    assert await journal.outbox_stats() == (0, None)
