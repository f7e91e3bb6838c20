"""kill -9 mid-batch: after a restart every acknowledged event reaches the hub, and the
only repeats are the batches that were in flight (the hub stores each id once)."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.agent.relay.conftest import FakeHub, wait_for
from tests.support.hub import HubHandle, start_hub

SCRIPT = Path(__file__).with_name("relay_process.py")
BATCH = 200  # relay_process.py's batch size


async def spawn(journal: Path, hub: FakeHub | _Target, *extra: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        str(journal),
        hub.url,
        hub.token,
        *extra,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert (await asyncio.wait_for(proc.stdout.readline(), 10)) == b"started\n"
    return proc


async def test_kill_9_mid_batch_loses_nothing(tmp_path: Path, hub: FakeHub) -> None:
    journal = tmp_path / "journal.db"
    in_flight = asyncio.Event()

    async def slow_third_reply(events: list[dict[str, Any]]) -> None:
        if len(hub.requests) >= 3:
            in_flight.set()
            await asyncio.sleep(0.3)  # stored, but the agent dies before hearing so

    hub.before_reply = slow_third_reply
    proc = await spawn(journal, hub, "--produce")
    await asyncio.wait_for(in_flight.wait(), 10)
    proc.send_signal(signal.SIGKILL)
    out, _ = await proc.communicate()
    acknowledged = [int(line) for line in out.split()]
    assert acknowledged
    cut_off = [e["seq"] for e in hub.requests[2].events]  # the hub has them, the agent not
    undelivered = _undelivered(journal)
    assert set(cut_off) <= undelivered

    hub.before_reply = None
    proc = await spawn(journal, hub)
    try:
        await wait_for(lambda: not _undelivered(journal), within=8, what="the outbox to drain")
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

    assert set(acknowledged) <= set(hub.stored_seqs())
    repeats = sum(n - 1 for n in Counter(e["id"] for e in hub.received).values())
    # The batch cut off is sent again; at most one more (its predecessor's mark).
    assert len(cut_off) <= repeats <= 2 * BATCH
    assert len(hub.stored) == len({e["id"] for e in hub.received})


def _undelivered(path: Path) -> set[int]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return {r[0] for r in conn.execute("SELECT seq FROM events WHERE delivered = 0")}


async def test_kill_9_while_sending_to_the_real_hub(tmp_path: Path) -> None:
    hub = await asyncio.to_thread(start_hub, tmp_path / "run")
    try:
        journal = tmp_path / "journal.db"
        target = _Target(hub.url, hub.token)
        proc = await spawn(journal, target, "--produce")
        await wait_for(lambda: _at_least(hub, 300), what="events at the hub")
        proc.send_signal(signal.SIGKILL)
        out, _ = await proc.communicate()
        acknowledged = {int(line) for line in out.split()}

        proc = await spawn(journal, target)
        try:
            await wait_for(lambda: not _undelivered(journal), within=8, what="the outbox")
        finally:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        stored = await asyncio.to_thread(hub.all_events)
    finally:
        await asyncio.to_thread(hub.stop)
    seqs = [e["seq"] for e in stored]
    assert acknowledged <= set(seqs)
    assert seqs == sorted(set(seqs))  # each once
    with sqlite3.connect(journal) as conn:
        assert seqs == [r[0] for r in conn.execute("SELECT seq FROM events ORDER BY seq")]


@dataclass
class _Target:
    url: str
    token: str


async def _at_least(hub: HubHandle, n: int) -> bool:
    status, body = await asyncio.to_thread(hub.get_events, 0, n)
    return status == 200 and len(body["events"]) >= n
