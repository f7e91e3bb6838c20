"""Stock benchmark: changes through the ledger to the four platforms' stock APIs.

    .venv/bin/python bench/stock.py [--changes 1000] [--items 50] [--concurrency 16]
                                    [--skip-pg] [--dir DIR]

Prints one JSON object, per database (SQLite file, PostgreSQL):
- "ledger_single": changes booked per second, one `record` (one transaction) at a time.
- "ledger_concurrent": the same with `--concurrency` bookings in flight.
- "events_batched": agent stock.changed events booked per second through the ingest
  hook (StockFeed.on_events), 500 per batch as the agent sends them.
- "end_to_end": `--changes` changes over `--items` barcodes, booked `--concurrency` at a
  time while the pushes run, until all four fake platforms (loopback HTTP, signatures
  checked, tests/support/platforms.py) show every item's final quantity: changes per
  second over that whole span, the platform calls it took, and "correct": every
  platform shows the ledger's final quantity for every item and was never told an
  older quantity after a newer one.
Each single change is one transaction (one fsync on SQLite); the batched path shows what
the ingest of agent batches gets. Platform calls stay far below the changes (debounce,
batches per platform), and "correct" must be true.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import sys
import tempfile
import time
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from cloud.envelope import Envelope  # noqa: E402
from cloud.orders.stores import StoreDirectory  # noqa: E402
from cloud.platforms.registry import configured_adapters  # noqa: E402
from cloud.stock.catalog import SkuListing  # noqa: E402
from cloud.stock.ledger import StockLedger  # noqa: E402
from cloud.stock.product import Product  # noqa: E402
from cloud.stock.service import StockService  # noqa: E402
from tests.cloud.orders.order_fixtures import (  # noqa: E402
    PLATFORM_TOKEN,
    STORE,
    fresh_database,
    hub_config,
)
from tests.support.platforms import PLATFORMS, FakePlatform  # noqa: E402
from tests.support.postgres import postgres_database  # noqa: E402


def gtin(n: int) -> str:
    body = f"69{n:010d}"
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


async def ledger_rates(db_url: str, changes: int, concurrency: int) -> dict[str, float]:
    async with fresh_database(db_url) as db:
        ledger = StockLedger(db)
        start = time.perf_counter()
        for n in range(changes):
            await ledger.record(STORE, gtin(n % 20), -1, "sale", f"event:s-{n}")
        single = rate(changes, time.perf_counter() - start)
        counter = itertools.count()

        async def stream() -> None:
            while (n := next(counter)) < changes:
                await ledger.record(STORE, gtin(n % 20), -1, "sale", f"event:c-{n}")

        start = time.perf_counter()
        await asyncio.gather(*(stream() for _ in range(concurrency)))
        concurrent = rate(changes, time.perf_counter() - start)
        service = StockService(db, ledger, {}, StoreDirectory([]))
        events = [
            Envelope(
                f"ev-{n}",
                STORE,
                n + 1,
                "2025-01-02T03:04:05.000000Z",
                "stock.changed",
                json.dumps({"data": {"barcode": gtin(n % 20), "delta": -1, "reason": "sale"}}),
            )
            for n in range(changes * 4)
        ]
        start = time.perf_counter()
        for i in range(0, len(events), 500):
            await service.feed.on_events(STORE, events[i : i + 500])
        batched = rate(len(events), time.perf_counter() - start)
    return {"ledger_single": single, "ledger_concurrent": concurrent, "events_batched": batched}


async def end_to_end(
    db_url: str, folder: Path, changes: int, items: int, concurrency: int
) -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        fakes = {
            name: await stack.enter_async_context(FakePlatform(name, token=PLATFORM_TOKEN))
            for name in PLATFORMS
        }
        cfg = hub_config(folder, {n: f.url for n, f in fakes.items()})
        db = await stack.enter_async_context(fresh_database(db_url, cfg))
        clients = {n: a.client() for n, a in configured_adapters(cfg.platforms).items()}
        for client in clients.values():
            stack.push_async_callback(client.close)
        ledger = StockLedger(db)
        service = StockService(db, ledger, clients, StoreDirectory(cfg.stores))
        barcodes = [gtin(n) for n in range(items)]
        await service.catalog.upsert(STORE, [Product(b, f"item {b}", 300) for b in barcodes])
        await service.catalog.map_skus(
            STORE, [SkuListing(p, f"sku-{b}", upc=b) for p in PLATFORMS for b in barcodes]
        )
        for b in barcodes:
            await ledger.record(STORE, b, 100_000, "restock", f"delivery:{b}")
        await service.start()
        stack.push_async_callback(service.stop)
        await asyncio.sleep(1.0)  # the opening stock out of the way
        calls_before = service.push.calls
        rng = random.Random(7)
        plan = [(rng.choice(barcodes), -rng.randint(1, 3)) for _ in range(changes)]
        counter = itertools.count()

        async def stream() -> None:
            while (n := next(counter)) < changes:
                barcode, delta = plan[n]
                await ledger.record(STORE, barcode, delta, "sale", f"event:e-{n}")

        start = time.perf_counter()
        await asyncio.gather(*(stream() for _ in range(concurrency)))
        booked = time.perf_counter() - start
        final = await ledger.quantities(STORE)
        await asyncio.gather(
            *(
                fake.wait_for_stock(f"sku-{b}", final[b], within_s=60)
                for fake in fakes.values()
                for b in barcodes
            )
        )
        elapsed = time.perf_counter() - start
        # Stock only goes down here: any quantity told after a lower one is out of order.
        in_order = all(
            all(a > b for a, b in itertools.pairwise(fake.stock_calls_of(f"sku-{bc}")))
            for fake in fakes.values()
            for bc in barcodes
        )
        shown = all(
            fake.stock.get(f"sku-{b}") == final[b] for fake in fakes.values() for b in barcodes
        )
        return {
            "changes": changes,
            "items": items,
            "changes_per_s": rate(changes, elapsed),
            "booking_only_per_s": rate(changes, booked),
            "seconds": round(elapsed, 3),
            "platform_calls": service.push.calls - calls_before,
            "correct": in_order and shown,
        }


async def run(args: argparse.Namespace, folder: Path, urls: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, url in urls.items():
        part = await ledger_rates(url, args.changes, args.concurrency)
        part["end_to_end"] = await end_to_end(
            url, folder / name, args.changes, args.items, args.concurrency
        )
        out[name] = part
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=1000)  # make bench within ~5 min
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    with ExitStack() as stack:
        folder = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        urls = {"sqlite": f"sqlite:///{folder / 'sqlite' / 'hub.db'}"}
        if not args.skip_pg:
            try:
                urls["postgresql"] = stack.enter_context(postgres_database())
            except BaseException as e:  # pytest.skip outside pytest: no server
                print(f"PostgreSQL skipped: {e}", file=sys.stderr)
        result = asyncio.run(run(args, folder, urls))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
