"""Journal benchmark: durable appends per second in a burst, and idle append latency.

    .venv/bin/python bench/journal.py [--events 50000] [--dir DIR]

Prints one JSON object. Every append counted is awaited, i.e. fsynced (WAL,
synchronous=FULL) before it is acknowledged. Two burst shapes:
- "burst_producers": long-lived tasks (like the agent's services) each appending in a
  loop; what the journal itself can do.
- "burst_task_per_event": one new asyncio task per event; includes ~11 us per event of
  asyncio task creation and scheduling (CPython 3.11), measured separately as
  "asyncio_task_overhead_us".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.floors

from agent.clock import Clock
from agent.journal import Journal
from bench.floors import sqlite_insert, tb_gateway
from bench.floors.figure import beside

DATA = {"door": "front", "subject": "courier-1234", "reason": "granted", "scope": "pickup"}


async def burst_producers(j: Journal, events: int, producers: int) -> dict[str, Any]:
    per = events // producers

    async def producer() -> None:
        for _ in range(per):
            await j.append("access.granted", DATA)

    commits = j.commits
    start = time.perf_counter()
    await asyncio.gather(*(producer() for _ in range(producers)))
    elapsed = time.perf_counter() - start
    n = per * producers
    return {
        "events": n,
        "producers": producers,
        "events_per_s": round(n / elapsed),
        "commits": j.commits - commits,
    }


async def burst_task_per_event(j: Journal, events: int) -> dict[str, Any]:
    commits = j.commits
    start = time.perf_counter()
    await asyncio.gather(*(j.append("access.granted", DATA) for _ in range(events)))
    elapsed = time.perf_counter() - start
    return {
        "events": events,
        "events_per_s": round(events / elapsed),
        "commits": j.commits - commits,
    }


async def idle_latency(j: Journal, appends: int) -> dict[str, Any]:
    samples = []
    for _ in range(appends):
        start = time.perf_counter()
        await j.append("door.opened", DATA)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "appends": appends,
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(samples[int(len(samples) * 0.99) - 1], 3),
        "max_ms": round(samples[-1], 3),
    }


async def task_overhead(events: int) -> float:
    """What one task per event costs with no journal at all (us per event)."""
    loop = asyncio.get_running_loop()

    async def one() -> None:
        future = loop.create_future()
        loop.call_soon(future.set_result, None)
        await future

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(events)))
    return round((time.perf_counter() - start) / events * 1e6, 2)


async def main(events: int, folder: Path, smoke: bool = False) -> dict[str, Any]:
    async with await Journal.open(folder / "journal.db", "bench", Clock()) as j:
        await j.append("agent.started", {})  # warm up: schema created, statements cached
        result = {
            "sqlite": __import__("sqlite3").sqlite_version,
            "python": sys.version.split()[0],
            "burst_producers": await burst_producers(j, events, producers=1000),
            "burst_task_per_event": await burst_task_per_event(j, events),
            "asyncio_task_overhead_us": await task_overhead(events),
            "idle_latency": await idle_latency(j, 100 if smoke else 2000),
        }
    # The floors, on the same disk in the same run (bench/floors/sqlite_insert.py).
    single = await asyncio.to_thread(sqlite_insert.single_commits, folder, 100 if smoke else 1000)
    grouped = await asyncio.to_thread(sqlite_insert.grouped, folder, events)
    # The peer: a smoke run uses ThingsBoard's storage only if a full run installed it.
    peer = await asyncio.to_thread(
        tb_gateway.storage_rate, folder / "thingsboard", events, install=not smoke
    )
    result["thingsboard_storage"] = peer
    peer_name = (
        f"ThingsBoard gateway {tb_gateway.VERSION} SQLiteEventStorage (not fsynced per batch)"
        if peer["peer"].startswith("thingsboard")
        else "the equivalent of ThingsBoard gateway's SQLite storage (bench/floors/tb_gateway.py)"
    )
    result["figures"] = [
        beside(
            "idle append p50",
            result["idle_latency"]["p50_ms"],
            "ms",
            "bare sqlite3 insert, one commit (WAL, synchronous=FULL) p50",
            single["p50_ms"],
            better="lower",
        ),
        beside(
            "burst appends",
            result["burst_producers"]["events_per_s"],
            "appends/s",
            f"bare sqlite3 inserts, {grouped['per_commit']} per commit",
            grouped["rows_per_s"],
            better="higher",
        ),
        beside(
            "burst appends, each fsynced before its ack",
            result["burst_producers"]["events_per_s"],
            "appends/s",
            peer_name,
            peer["events_per_s"],
            better="higher",
            target_ratio=1.0,  # issue 17: at least what the peer does, and durable
        ),
    ]
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--dir", type=Path, help="where to put the journal (default: a temp dir)")
    parser.add_argument("--smoke", action="store_true", help="tiny run: the JSON's shape only")
    args = parser.parse_args()
    events = 2000 if args.smoke else args.events
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        print(json.dumps(asyncio.run(main(events, Path(tmp), args.smoke)), indent=2))
