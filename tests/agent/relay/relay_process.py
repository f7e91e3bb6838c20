"""Run by test_relay_crash.py: an agent-like process with a journal and a relay.

    python relay_process.py JOURNAL HUB_URL TOKEN [--produce]

With --produce it also appends events in a loop, printing "seq" for each acknowledged
one, until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from agent.clock import Clock
from agent.journal import Journal
from agent.relay import Relay


async def main(path: Path, hub_url: str, token: str, produce: bool) -> None:
    journal = await Journal.open(path, "demo-001", Clock())
    relay = Relay(journal, hub_url=hub_url, store_id="demo-001", token=token, batch_size=200)
    await relay.start()
    sys.stdout.write("started\n")
    sys.stdout.flush()
    n = 0
    while True:
        if produce:
            events = await journal.append_many(
                [("sale.completed", {"n": n + i}) for i in range(10)]
            )
            n += 10
            sys.stdout.write("".join(f"{e.seq}\n" for e in events))
            sys.stdout.flush()
        await asyncio.sleep(0.005)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("journal", type=Path)
    parser.add_argument("hub_url")
    parser.add_argument("token")
    parser.add_argument("--produce", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.journal, args.hub_url, args.token, args.produce))
