"""Relay benchmark: durable append rate, and how fast a backlog drains to the hub.

    .venv/bin/python bench/relay.py [--backlog 100000] [--batch-sizes 500,2000]
                                    [--target auto|hub|sink] [--dir DIR]

Prints one JSON object.
- "append": a burst from 1,000 long-lived producer tasks, each append awaited (fsynced,
  WAL + synchronous=FULL) before the next; the same measurement as bench/journal.py.
- "drain": a backlog of `--backlog` journaled events is sent by agent.relay.Relay, once
  per batch size, to the real hub (cloud/, SQLite database, started the way the tests
  start it, tests/support/hub.py) or, with --target sink or if that is not available,
  to a minimal aiohttp sink in its own process that un-gzips, parses and dedupes by id
  but stores nothing ("target" in the output says which). Timed from relay start until
  the journal holds no undelivered event (every event marked delivered after a 2xx).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from journal import burst_producers  # noqa: E402  (bench/journal.py)

from agent.clock import Clock  # noqa: E402
from agent.journal import Journal  # noqa: E402
from agent.relay import Relay  # noqa: E402

STORE = "bench-001"
DATA = {"door": "front", "subject": "courier-1234", "reason": "granted", "scope": "pickup"}


# --- the sink (a separate process: the hub never shares the agent's CPU time) ------------


def serve_sink(port: int) -> None:
    from aiohttp import web

    seen: set[str] = set()

    async def events(request: web.Request) -> web.Response:
        batch = json.loads(await request.read())["events"]  # aiohttp un-gzips
        new = {e["id"] for e in batch} - seen
        seen.update(new)
        return web.json_response({"accepted": len(new), "duplicates": len(batch) - len(new)})

    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.router.add_post("/api/v1/stores/{store}/events", events)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


@contextmanager
def sink(folder: Path) -> Iterator[tuple[str, str, str]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, __file__, "--serve-sink", str(port)])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the sink did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", "sink-token", STORE
    finally:
        proc.terminate()
        proc.wait(10)


Target = Callable[[Path], AbstractContextManager[tuple[str, str, str]]]


def real_hub() -> Target | None:
    try:
        from tests.support.hub import start_hub
    except ImportError:
        return None

    @contextmanager
    def run(folder: Path) -> Iterator[tuple[str, str, str]]:
        with start_hub(folder) as hub:  # the demo hub.yaml: SQLite, store demo-001
            yield hub.url, hub.token, hub.store

    return run


# --- measurements ------------------------------------------------------------------------


async def fill(journal: Journal, events: int) -> None:
    chunk = 5000
    for start in range(0, events, chunk):
        await journal.append_many([("access.granted", DATA)] * min(chunk, events - start))


async def drain(
    folder: Path, events: int, batch: int, url: str, token: str, store: str
) -> dict[str, Any]:
    async with await Journal.open(folder / f"drain-{batch}.db", store, Clock()) as journal:
        await fill(journal, events)
        relay = Relay(journal, hub_url=url, store_id=store, token=token, batch_size=batch)
        lags: list[float] = []
        lag_task = asyncio.ensure_future(loop_lag(lags))
        start = time.perf_counter()
        await relay.start()
        try:
            # Polling the journal is the point: done means every event marked delivered.
            while (await journal.outbox_summary()).pending:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            elapsed = time.perf_counter() - start
            stats = await relay.refresh_stats()
        finally:
            lag_task.cancel()
            await relay.stop()
    lags.sort()
    return {
        "batch_size": batch,
        "events": events,
        "seconds": round(elapsed, 2),
        "events_per_s": round(events / elapsed),
        "delivered": stats["delivered_since_start"],
        "failures": stats["consecutive_failures"],
        "last_error": stats["last_error"],
        # How late a 1 ms timer fires meanwhile: what a door decision would wait for.
        "loop_lag_p99_ms": round(lags[int(len(lags) * 0.99)] * 1000, 2) if lags else None,
        "loop_lag_max_ms": round(lags[-1] * 1000, 2) if lags else None,
    }


async def loop_lag(lags: list[float]) -> None:
    while True:
        start = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append(time.perf_counter() - start - 0.001)


async def append_rate(folder: Path, events: int) -> dict[str, Any]:
    async with await Journal.open(folder / "append.db", STORE, Clock()) as journal:
        await journal.append("agent.started", {})  # warm up
        return await burst_producers(journal, events, producers=1000)


def main(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    result: dict[str, Any] = {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "append": asyncio.run(append_rate(folder, args.appends)),
    }
    target = None if args.target == "sink" else real_hub()
    if target is None:
        if args.target == "hub":
            raise SystemExit("tests/support/hub.py (start_hub) is not available")
        result["target"] = "sink (minimal aiohttp server in its own process; stores nothing)"
        target = sink
    else:
        result["target"] = "hub (cloud/ `shopgate-hub run`, SQLite, a fresh database per run)"
    runs = []
    for batch in args.batch_sizes:
        with target(folder / f"hub-{batch}") as (url, token, store):
            runs.append(asyncio.run(drain(folder, args.backlog, batch, url, token, store)))
    result["drain"] = runs
    return result


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-sink":
        serve_sink(int(sys.argv[2]))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--appends", type=int, default=50_000)
    parser.add_argument(
        "--batch-sizes",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[500, 2000],  # a small batch and the agent's default: make bench stays short
    )
    parser.add_argument("--target", choices=["auto", "hub", "sink"], default="auto")
    parser.add_argument("--dir", type=Path, help="where to put the journals (default: temp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        print(json.dumps(main(args, Path(tmp)), indent=2))
