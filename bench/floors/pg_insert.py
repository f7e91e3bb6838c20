"""The floor under the hub's event ingest: the same rows written into a table of the same
shape (cloud/db/tables.py `events`: primary key (store_id, id), index on (store_id, seq))
by bare asyncpg, in batches of the size the agent sends, one transaction per batch, as
many batches in flight as the ingest bench sends. Two ways: a multi-row INSERT ... ON
CONFLICT DO NOTHING (what the hub must do, since an agent resends) and COPY (the fastest
a PostgreSQL takes rows, with no duplicate check)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

DDL = """
CREATE TABLE floor_events (
    store_id VARCHAR(64) NOT NULL, id VARCHAR(128) NOT NULL, seq BIGINT NOT NULL,
    ts VARCHAR(32) NOT NULL, type VARCHAR(100) NOT NULL, envelope TEXT NOT NULL,
    received_at VARCHAR(32) NOT NULL, PRIMARY KEY (store_id, id)
);
CREATE INDEX ix_floor_events_store_seq ON floor_events (store_id, seq);
"""
COLUMNS = ("store_id", "id", "seq", "ts", "type", "envelope", "received_at")
INSERT = (
    f"INSERT INTO floor_events ({', '.join(COLUMNS)}) VALUES ($1, $2, $3, $4, $5, $6, $7) "
    "ON CONFLICT (store_id, id) DO NOTHING"
)


def rows(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    received = "2025-01-31T08:00:01.000Z"
    return [
        (e["store"], e["id"], e["seq"], e["ts"], e["type"], json.dumps(e), received) for e in events
    ]


async def _run(url: str, batches: list[list[tuple[Any, ...]]], in_flight: int, copy: bool) -> float:
    import asyncpg

    admin = await asyncpg.connect(url)
    try:
        await admin.execute("DROP TABLE IF EXISTS floor_events")
        await admin.execute(DDL)
    finally:
        await admin.close()
    pool = await asyncpg.create_pool(url, min_size=in_flight, max_size=in_flight)
    queue = iter(batches)

    async def writer() -> None:
        async with pool.acquire() as conn:
            for batch in queue:
                async with conn.transaction():
                    if copy:
                        await conn.copy_records_to_table(
                            "floor_events", records=batch, columns=COLUMNS
                        )
                    else:
                        await conn.executemany(INSERT, batch)

    try:
        start = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(in_flight)))
        return time.perf_counter() - start
    finally:
        await pool.close()


async def insert_rates(
    url: str, batches: list[list[dict[str, Any]]], in_flight: int = 8
) -> dict[str, Any]:
    """Rows per second both ways, into a fresh table each time in database `url`."""
    prepared = [rows(b) for b in batches]
    total = sum(len(b) for b in prepared)
    insert_s = await _run(url, prepared, in_flight, copy=False)
    copy_s = await _run(url, prepared, in_flight, copy=True)
    return {
        "rows": total,
        "batch": len(prepared[0]) if prepared else 0,
        "in_flight": in_flight,
        "insert_rows_per_s": total / insert_s,
        "copy_rows_per_s": total / copy_s,
    }
