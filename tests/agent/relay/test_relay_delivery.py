"""The relay delivers the journal's events to a hub on loopback: in order, at least once."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from aiohttp import web

from agent.journal import Journal
from agent.relay import Relay
from tests.agent.relay.conftest import TOKEN, FakeHub, append, wait_for


async def drained(journal: Journal) -> bool:
    return (await journal.outbox_summary()).pending == 0


async def test_a_backlog_drains_in_seq_order_exactly_once(
    journal: Journal, hub: FakeHub, make_relay: Callable[..., Relay]
) -> None:
    seqs = await append(journal, 1234)
    relay = make_relay(hub, batch_size=500)
    await relay.start()

    await wait_for(lambda: drained(journal), what="the backlog to drain")

    assert [e["seq"] for e in hub.received] == seqs  # in order, each once
    assert [len(r.events) for r in hub.requests] == [500, 500, 234]
    assert await journal.undelivered(10) == []
    first = hub.received[0]
    assert set(first) == {"id", "store", "seq", "ts", "type", "data"}
    assert first["store"] == "demo-001" and first["data"] == {"i": 0}


async def test_bodies_are_gzip_on_the_wire_with_the_bearer_token(
    journal: Journal, make_relay: Callable[..., Relay]
) -> None:
    # A bare TCP server, so we see the bytes as sent (aiohttp's server would un-gzip them).
    seen: list[tuple[bytes, bytes]] = []

    async def one_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])  # type: ignore[index]
        body = await reader.readexactly(length)
        seen.append((head, body))
        n = len(json.loads(gzip.decompress(body))["events"])
        answer = json.dumps({"accepted": n, "duplicates": 0}).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(answer), answer)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(one_request, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        seqs = await append(journal, 50)
        await make_relay(FakeHub(port)).start()
        await wait_for(lambda: drained(journal))
    finally:
        server.close()
        await server.wait_closed()

    head, body = seen[0]
    assert head.startswith(b"POST /api/v1/stores/demo-001/events HTTP/1.1\r\n")
    headers = head.decode().lower()
    assert "content-encoding: gzip" in headers
    assert "content-type: application/json" in headers
    assert f"authorization: bearer {TOKEN}".lower() in headers
    assert body[:2] == b"\x1f\x8b"
    assert [e["seq"] for e in json.loads(gzip.decompress(body))["events"]] == seqs


async def test_new_events_are_sent_at_once_without_polling(
    journal: Journal, hub: FakeHub, make_relay: Callable[..., Relay]
) -> None:
    await make_relay(hub, tick_s=60.0).start()
    await append(journal, 1)
    await wait_for(lambda: len(hub.stored) == 1)
    start = time.monotonic()
    (seq,) = await append(journal, 1)
    await wait_for(lambda: len(hub.stored) == 2, within=1.0)
    assert time.monotonic() - start < 0.5  # woken by the commit, not by the 60 s tick
    assert hub.stored_seqs()[-1] == seq


async def test_hub_down_then_up_everything_arrives(
    journal: Journal, down_hub: FakeHub, make_relay: Callable[..., Relay]
) -> None:
    seqs = await append(journal, 300)
    relay = make_relay(down_hub, retry_min_s=0.05, retry_max_s=0.2)
    await relay.start()

    stats: dict[str, Any] = await wait_for(
        lambda: _stats_when(relay, lambda s: s["consecutive_failures"] >= 3),
        what="a few refused connections",
    )
    assert "hub unreachable" in stats["last_error"]
    assert stats["undelivered"] == 300 and stats["last_success_ts"] is None

    await down_hub.start()
    await wait_for(lambda: drained(journal), what="delivery once the hub is up")
    assert [e["seq"] for e in down_hub.received] == seqs
    stats = await relay.refresh_stats()
    assert stats["consecutive_failures"] == 0 and stats["last_error"] is None
    assert stats["last_success_ts"] is not None


async def test_backoff_grows_while_the_hub_is_down(
    journal: Journal, down_hub: FakeHub, make_relay: Callable[..., Relay]
) -> None:
    await append(journal, 5)
    relay = make_relay(down_hub, retry_min_s=0.02, retry_max_s=0.16)
    await relay.start()
    await wait_for(
        lambda: _stats_when(relay, lambda s: s["consecutive_failures"] >= 8), what="retries"
    )
    # Steps 0.02, 0.04, 0.08, 0.16, 0.16... (each at least half its step): not a busy loop.
    failures = (await relay.refresh_stats())["consecutive_failures"]
    await _sleep(0.5)
    more = (await relay.refresh_stats())["consecutive_failures"] - failures
    assert 2 <= more <= 7


async def test_sync_now_cuts_the_backoff_short(
    journal: Journal, down_hub: FakeHub, make_relay: Callable[..., Relay]
) -> None:
    await append(journal, 5)
    relay = make_relay(down_hub, retry_min_s=30.0, retry_max_s=30.0)
    await relay.start()
    await wait_for(lambda: _stats_when(relay, lambda s: s["consecutive_failures"] == 1))
    await down_hub.start()
    relay.sync_now()
    await wait_for(lambda: drained(journal), within=1.0, what="sync_now to send at once")


async def test_5xx_is_retried_until_the_hub_accepts(
    journal: Journal, hub: FakeHub, make_relay: Callable[..., Relay]
) -> None:
    answers = [503, 500, 502]

    async def flaky(events: list[dict[str, Any]]) -> web.Response | None:
        if answers:
            return web.Response(status=answers.pop(0), text="try later")
        return None

    hub.answer = flaky
    seqs = await append(journal, 40)
    await make_relay(hub).start()
    await wait_for(lambda: drained(journal))
    assert [r.status for r in hub.requests] == [503, 500, 502, 200]
    assert [e["seq"] for e in hub.received] == seqs
    assert (await journal.outbox_summary()).rejected == 0


async def test_429_retry_after_is_honoured(
    journal: Journal, hub: FakeHub, make_relay: Callable[..., Relay]
) -> None:
    answered = False

    async def busy_once(events: list[dict[str, Any]]) -> web.Response | None:
        nonlocal answered
        if not answered:
            answered = True
            return web.Response(status=429, headers={"Retry-After": "1"})
        return None

    hub.answer = busy_once
    await append(journal, 3)
    await make_relay(hub, retry_min_s=0.01, retry_max_s=0.01).start()
    await wait_for(lambda: drained(journal))
    first, second = hub.requests
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 0.95  # Retry-After, not the 10 ms backoff


async def test_a_wrong_token_is_retried_not_rejected_and_never_logged(
    journal: Journal, hub: FakeHub, make_relay: Callable[..., Relay], caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)

    hub.token = "the-hub-expects-another-token"
    await append(journal, 10)
    relay = make_relay(hub)
    await relay.start()
    stats = await wait_for(
        lambda: _stats_when(relay, lambda s: s["consecutive_failures"] >= 2), what="401s"
    )
    assert "token" in stats["last_error"] and "401" in stats["last_error"]
    assert stats["undelivered"] == 10 and stats["rejected"] == 0

    hub.token = TOKEN  # the operator fixes the token on the hub side
    relay.sync_now()
    await wait_for(lambda: drained(journal))
    assert len(hub.stored) == 10
    assert TOKEN not in caplog.text


async def test_a_hub_answer_quoting_the_token_is_redacted(
    journal: Journal, hub: FakeHub, make_relay: Callable[..., Relay], caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)

    async def quote_token(events: list[dict[str, Any]]) -> web.Response | None:
        return web.Response(status=400, text=f"bad batch from Bearer {TOKEN}")

    hub.answer = quote_token
    await append(journal, 1)
    relay = make_relay(hub)
    await relay.start()
    await wait_for(lambda: _stats_when(relay, lambda s: s["rejected"] == 1))
    (rejection,) = await journal.rejected()
    assert TOKEN not in rejection.reason and "[token]" in rejection.reason
    assert TOKEN not in caplog.text
    assert TOKEN not in str(await relay.refresh_stats())


async def test_413_splits_the_batch_and_rejects_nothing(
    journal: Journal, hub: FakeHub, make_relay: Callable[..., Relay]
) -> None:
    async def small_only(events: list[dict[str, Any]]) -> web.Response | None:
        return web.Response(status=413) if len(events) > 100 else None

    hub.answer = small_only
    seqs = await append(journal, 500)
    await make_relay(hub, batch_size=500).start()
    await wait_for(lambda: drained(journal))
    assert [e["seq"] for e in hub.received] == seqs
    assert (await journal.outbox_summary()).rejected == 0


async def test_stop_abandons_a_hanging_batch_and_a_restart_delivers_it(
    journal: Journal, hub: FakeHub, make_relay: Callable[..., Relay]
) -> None:
    released = asyncio.Event()

    async def hang(events: list[dict[str, Any]]) -> web.Response | None:
        await released.wait()
        return None

    hub.answer = hang
    seqs = await append(journal, 20)
    relay = make_relay(hub, stop_grace_s=0.3)
    await relay.start()
    await wait_for(lambda: hub.requests, what="the request to be in flight")
    start = time.monotonic()
    await relay.stop()
    assert time.monotonic() - start < 1.0
    assert (await journal.outbox_summary()).pending == 20  # nothing marked without a 2xx

    released.set()
    await make_relay(hub).start()
    await wait_for(lambda: drained(journal))
    assert hub.stored_seqs() == seqs


async def test_stop_lets_a_quick_in_flight_batch_finish(
    journal: Journal, hub: FakeHub, make_relay: Callable[..., Relay]
) -> None:
    async def slowish(events: list[dict[str, Any]]) -> web.Response | None:
        await _sleep(0.2)
        return None

    hub.answer = slowish
    await append(journal, 20)
    relay = make_relay(hub, stop_grace_s=2.0)
    await relay.start()
    await wait_for(lambda: hub.requests)
    await relay.stop()
    assert (await journal.outbox_summary()).pending == 0


async def test_stats_show_the_depth_and_the_age_of_the_oldest_event(
    journal: Journal, down_hub: FakeHub
) -> None:
    await append(journal, 7)
    (oldest,) = await journal.undelivered(1)
    oldest_epoch = _epoch(oldest.ts)
    fake_now = oldest_epoch + 3600.0
    relay = Relay(
        journal,
        hub_url=down_hub.url,
        store_id="demo-001",
        token=TOKEN,
        now=lambda: fake_now,
        retry_min_s=0.05,
        retry_max_s=0.1,
    )
    try:
        stats = await relay.refresh_stats()
        assert stats["undelivered"] == 7
        assert stats["oldest_undelivered_ts"] == oldest.ts
        assert stats["oldest_age_s"] == pytest.approx(3600.0, abs=0.1)

        await relay.start()
        await down_hub.start()
        await wait_for(lambda: drained(journal))
        stats = await relay.refresh_stats()
        assert stats["undelivered"] == 0 and stats["oldest_undelivered_ts"] is None
        assert stats["oldest_age_s"] is None
        assert stats["delivered_since_start"] == 7
    finally:
        await relay.stop()


async def test_the_stats_snapshot_follows_the_outbox_without_being_asked(
    journal: Journal, down_hub: FakeHub, make_relay: Callable[..., Relay]
) -> None:
    relay = make_relay(down_hub, stats_refresh_s=0.05)
    await relay.start()
    assert relay.stats()["undelivered"] == 0
    await append(journal, 5)
    await wait_for(lambda: relay.stats()["undelivered"] == 5, what="the snapshot to see 5")
    await down_hub.start()
    await wait_for(lambda: relay.stats()["undelivered"] == 0, what="the snapshot to see 0")
    assert relay.stats()["oldest_age_s"] is None


async def test_ten_thousand_events_while_the_hub_is_down(
    journal: Journal, down_hub: FakeHub, make_relay: Callable[..., Relay]
) -> None:
    relay = make_relay(down_hub, retry_min_s=0.05, retry_max_s=0.1)
    await relay.start()
    seqs: list[int] = []
    for _ in range(10):  # the store keeps working: bursts of appends while the hub is away
        seqs += await append(journal, 1000, "access.granted")
    assert (await relay.refresh_stats())["undelivered"] == 10_000

    await down_hub.start()
    await wait_for(lambda: drained(journal), what="10,000 events to drain")
    assert [e["seq"] for e in down_hub.received] == seqs
    assert len(down_hub.stored) == 10_000


async def _stats_when(relay: Relay, cond: Callable[[dict[str, Any]], bool]) -> Any:
    stats = await relay.refresh_stats()
    return stats if cond(stats) else None


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()
