"""Run by test_journal_crash.py: append forever, printing "seq n" for every acknowledged
append, until killed."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from agent.clock import Clock
from agent.journal import Journal, PutSetting


async def main(path: Path) -> None:
    journal = await Journal.open(path, "demo-001", Clock())
    counter = 0

    async def producer() -> None:
        nonlocal counter
        while True:
            counter += 1
            n = counter
            event = await journal.append("sale.completed", {"n": n}, ops=[PutSetting("last", n)])
            sys.stdout.write(f"{event.seq} {n}\n")
            sys.stdout.flush()

    await asyncio.gather(*(producer() for _ in range(20)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
