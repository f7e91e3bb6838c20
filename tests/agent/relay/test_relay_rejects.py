"""A batch the hub refuses (400) is bisected: good events delivered, bad ones kept aside."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from agent.journal import Journal
from agent.relay import Relay
from tests.agent.relay.conftest import FakeHub, append, wait_for


def refuse_poison(log: list[int]) -> Callable[[list[dict[str, Any]]], Any]:
    """The hub refuses a whole batch (400) if any event in it is poisoned."""

    async def answer(events: list[dict[str, Any]]) -> web.Response | None:
        log.append(len(events))
        bad = [e["seq"] for e in events if e["data"].get("poison")]
        if bad:
            return web.json_response(
                {"error": "invalid event", "detail": f"seq {bad[0]}: data.poison not allowed"},
                status=400,
            )
        return None

    return answer


async def settled(journal: Journal) -> bool:
    return (await journal.outbox_summary()).pending == 0


async def test_one_poisoned_event_does_not_block_the_others(
    journal: Journal, hub: FakeHub, make_relay: Callable[..., Relay]
) -> None:
    sizes: list[int] = []
    hub.answer = refuse_poison(sizes)
    before = await append(journal, 537)
    (poison,) = [e.seq for e in await journal.append_many([("sale.completed", {"poison": True})])]
    after = await append(journal, 462)
    relay = make_relay(hub, batch_size=500)
    await relay.start()

    await wait_for(lambda: settled(journal), what="the good events to be delivered")

    assert [e["seq"] for e in hub.received] == before + after  # in seq order, each once
    (rejection,) = await journal.rejected()
    assert rejection.event.seq == poison and rejection.event.data == {"poison": True}
    assert rejection.status == 400
    assert json.loads(rejection.reason)["detail"] == f"seq {poison}: data.poison not allowed"
    stats = await relay.refresh_stats()
    assert stats["rejected"] == 1 and stats["undelivered"] == 0
    assert stats["last_rejection"].startswith(f"seq {poison} (sale.completed): HTTP 400")
    # Bisection, not one request per event: ~2 log2(500) requests for the bad batch.
    assert len(sizes) < 30

    # Not resent: a later sync sends the new event only.
    sizes.clear()
    (new,) = await append(journal, 1)
    relay.sync_now()
    await wait_for(lambda: new in hub.stored_seqs())
    assert sizes == [1]


async def test_several_poisoned_events_in_one_batch(
    journal: Journal, hub: FakeHub, make_relay: Callable[..., Relay]
) -> None:
    hub.answer = refuse_poison([])
    items = [("sale.completed", {"i": i, "poison": i in (0, 7, 8, 63)}) for i in range(64)]
    events = await journal.append_many(items)
    await make_relay(hub, batch_size=64).start()
    await wait_for(lambda: settled(journal))

    bad = {e.seq for e in events if e.data["poison"]}
    assert {r.event.seq for r in await journal.rejected()} == bad
    assert [e["seq"] for e in hub.received] == [e.seq for e in events if e.seq not in bad]


async def test_a_requeued_rejection_is_sent_again(
    journal: Journal, hub: FakeHub, make_relay: Callable[..., Relay]
) -> None:
    hub.answer = refuse_poison([])
    (seq,) = [e.seq for e in await journal.append_many([("stock.changed", {"poison": True})])]
    await make_relay(hub).start()
    await wait_for(lambda: journal.rejected())

    hub.answer = None  # the hub was fixed to accept it
    assert await journal.requeue_rejected() == 1
    await wait_for(lambda: seq in hub.stored_seqs(), what="the requeued event")
    assert await journal.rejected() == []
    assert (await journal.outbox_summary()).rejected == 0


async def test_a_hub_naming_the_bad_event_saves_the_bisection(
    journal: Journal, hub: FakeHub, make_relay: Callable[..., Relay]
) -> None:
    sizes: list[int] = []

    async def name_it(events: list[dict[str, Any]]) -> web.Response | None:
        # As cloud/ answers: the whole batch refused, the first bad event's index given.
        sizes.append(len(events))
        for i, e in enumerate(events):
            if e["data"].get("poison"):
                error = {"code": "bad_event", "message": f"events[{i}].data: no", "index": i}
                return web.json_response({"error": error}, status=400)
        return None

    hub.answer = name_it
    items = [("sale.completed", {"i": i, "poison": i == 300}) for i in range(500)]
    events = await journal.append_many(items)
    await make_relay(hub, batch_size=500).start()
    await wait_for(lambda: settled(journal))

    # The batch, the 300 before it, the bad one alone (confirmed), the 199 after it.
    assert sizes == [500, 300, 1, 199]
    (rejection,) = await journal.rejected()
    assert rejection.event.seq == events[300].seq
    assert json.loads(rejection.reason)["error"]["index"] == 0
    assert len(hub.stored) == 499
