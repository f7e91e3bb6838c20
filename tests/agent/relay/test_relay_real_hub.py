"""The relay against the real hub process (cloud/, `shopgate-hub run`, SQLite)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.clock import Clock
from agent.journal import Journal
from agent.relay import Relay
from tests.agent.relay.conftest import free_port, wait_for
from tests.support.hub import HubHandle, start_hub


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    j = await Journal.open(tmp_path / "agent" / "journal.db", "demo-001", Clock())
    yield j
    await j.close()


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubHandle]:
    h = await asyncio.to_thread(start_hub, tmp_path)
    yield h
    await asyncio.to_thread(h.stop)


def relay_to(journal: Journal, url: str, token: str, **kw: Any) -> Relay:
    kw = {"retry_min_s": 0.05, "retry_max_s": 0.3} | kw
    return Relay(journal, hub_url=url, store_id="demo-001", token=token, **kw)


async def drained(journal: Journal) -> bool:
    return (await journal.outbox_summary()).pending == 0


async def test_a_backlog_reaches_the_hub_as_journaled(journal: Journal, hub: HubHandle) -> None:
    events = await journal.append_many(
        [("sale.completed", {"i": i, "名": "茶"}) for i in range(2500)]
    )
    relay = relay_to(journal, hub.url, hub.token, batch_size=1000)
    await relay.start()
    try:
        await wait_for(lambda: drained(journal), what="the backlog at the hub")
    finally:
        await relay.stop()
    stored = await asyncio.to_thread(hub.all_events)
    assert stored == [e.to_dict() for e in events]  # in seq order, once, unchanged


async def test_hub_down_then_up_on_its_port(journal: Journal, tmp_path: Path) -> None:
    port = free_port()
    token = "tok-relay-test-down-then-up"
    seqs = [e.seq for e in await journal.append_many([("door.opened", {})] * 300)]
    relay = relay_to(journal, f"http://127.0.0.1:{port}", token)
    await relay.start()
    try:
        await wait_for(lambda: _failures(relay, 2), what="connection refused, retried")
        hub = await asyncio.to_thread(start_hub, tmp_path, port=port, token=token)
        try:
            await wait_for(lambda: drained(journal), what="delivery once the hub is up")
            stored = await asyncio.to_thread(hub.all_events)
        finally:
            await asyncio.to_thread(hub.stop)
    finally:
        await relay.stop()
    assert [e["seq"] for e in stored] == seqs


async def test_an_event_the_hub_refuses_is_kept_and_the_rest_delivered(
    journal: Journal, hub: HubHandle
) -> None:
    good = await journal.append_many([("sale.completed", {"i": i}) for i in range(100)])
    # The journal takes any printable type; the hub's envelope rules do not.
    (bad,) = await journal.append_many([("sale completed!", {"i": 100})])
    more = await journal.append_many([("sale.completed", {"i": i}) for i in range(101, 200)])
    relay = relay_to(journal, hub.url, hub.token, batch_size=500)
    await relay.start()
    try:
        await wait_for(lambda: drained(journal), what="the good events at the hub")
        stats = await relay.refresh_stats()
    finally:
        await relay.stop()
    stored = await asyncio.to_thread(hub.all_events)
    assert [e["seq"] for e in stored] == [e.seq for e in good + more]
    (rejection,) = await journal.rejected()
    assert rejection.event.seq == bad.seq and rejection.status == 400
    assert "type" in rejection.reason
    assert stats["rejected"] == 1 and stats["undelivered"] == 0


async def test_a_wrong_token_holds_the_events_without_rejecting_them(
    journal: Journal, hub: HubHandle
) -> None:
    await journal.append_many([("sale.completed", {})] * 5)
    relay = relay_to(journal, hub.url, "not-the-token")
    await relay.start()
    try:
        stats = await wait_for(lambda: _failures(relay, 2), what="401s")
    finally:
        await relay.stop()
    assert "token" in stats["last_error"]
    assert stats["undelivered"] == 5 and stats["rejected"] == 0


async def _failures(relay: Relay, n: int) -> dict[str, Any] | None:
    stats = await relay.refresh_stats()
    return stats if stats["consecutive_failures"] >= n else None
