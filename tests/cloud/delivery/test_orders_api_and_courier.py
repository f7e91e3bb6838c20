"""The orders API agents catch up with, the courier's pickup pass and page, and pickups
coming back as events: the real hub application, order service and database."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from agent.rules.decide import AccessState, DoorPolicy, decide_pass
from agent.rules.passes import PassVerifier
from cloud.db.deliveries import get_delivery
from cloud.db.times import now_text
from tests.agent.mqtt.harness import watching
from tests.cloud.delivery.inproc import (
    MERCHANT_TOKEN,
    OTHER_TOKEN,
    STORE,
    InprocHub,
    cancel_order,
    inproc_hub,
    new_order,
    poll,
)
from tests.support.agent import make_keys
from tests.support.broker import BrokerHandle
from tests.support.hub import make_event

ORDERS = f"/api/v1/stores/{STORE}/orders"


@pytest.fixture
async def hub(tmp_path: Path, broker: BrokerHandle) -> AsyncIterator[InprocHub]:
    make_keys(tmp_path)
    async with inproc_hub(tmp_path, broker.url) as h:
        yield h


async def test_a_store_lists_its_pending_and_recently_cancelled_orders(hub: InprocHub) -> None:
    first = await new_order(hub.orders, 1)
    second = await new_order(hub.orders, 2)
    status, body = await hub.get(f"{ORDERS}?status=pending")
    assert status == 200
    assert body["orders"] == [first.to_agent(), second.to_agent()]
    assert body["orders"][0]["pickup_code"] == first.pickup_code
    assert body["orders"][0]["items"][0] == {
        "barcode": "6901234567892",
        "name": "可乐 330ml",
        "qty": 2,
        "shelf": "A3",
    }
    mark = body["now"]
    await cancel_order(hub.orders, first)
    status, body = await hub.get(f"{ORDERS}?status=cancelled&updated_after={mark}")
    assert [o["id"] for o in body["orders"]] == [first.id]
    assert body["orders"][0]["status"] == "cancelled"
    status, body = await hub.get(f"{ORDERS}?status=pending,cancelled&updated_after={now_text()}")
    assert body["orders"] == []
    # A "+" offset that the query string turned into a space is still understood.
    status, body = await hub.get(f"{ORDERS}?status=pending&updated_after=2025-01-01T08:00:00+08:00")
    assert status == 200 and [o["id"] for o in body["orders"]] == [second.id]


async def test_who_may_list_orders_and_what_is_refused(hub: InprocHub) -> None:
    await new_order(hub.orders, 1)
    status, body = await hub.get(ORDERS, token=MERCHANT_TOKEN)
    assert status == 200 and len(body["orders"]) == 1
    assert (await hub.get(ORDERS, token=OTHER_TOKEN))[0] == 403
    assert (await hub.get(ORDERS, token=None))[0] == 401
    status, body = await hub.get(f"{ORDERS}?status=lost")
    assert status == 400 and "status must be one of" in body["error"]["message"]
    status, body = await hub.get(f"{ORDERS}?updated_after=yesterday")
    assert status == 400 and body["error"]["code"] == "bad_query"
    status, body = await hub.get(f"{ORDERS}?updated_after=2025-01-01T08:00:00")
    assert status == 400 and "offset" in body["error"]["message"]


def verifier(tmp_path: Path) -> PassVerifier:
    pub = load_pem_public_key((tmp_path / "keys" / "hub-signing.pub.pem").read_bytes())
    return PassVerifier({"demo": pub}, skew_seconds=60)  # type: ignore[dict-item]


async def test_a_courier_pass_opens_the_door_for_its_order_only(
    tmp_path: Path, hub: InprocHub
) -> None:
    mine = await new_order(hub.orders, 1)
    other = await new_order(hub.orders, 2)
    status, body = await hub.get(f"{ORDERS}/{mine.id}/pickup-pass?courier=rider-7")
    assert status == 200, body
    assert body["pickup_code"] == mine.pickup_code and body["day_seq"] == 1
    assert body["qr_svg"].startswith("<svg") and "取货码" in body["qr_svg"]
    assert body["expires_at"] > now_text()
    now = time.time()
    claims = verifier(tmp_path).verify(body["pass"], store=STORE, now=now)
    assert not hasattr(claims, "reason"), claims
    assert claims.scope == "pickup" and claims.orders == (mine.id,)  # type: ignore[union-attr]
    assert claims.sub == "rider-7"  # type: ignore[union-attr]
    assert 7100 <= claims.exp - now <= 7300  # type: ignore[union-attr]
    state = AccessState(
        orders={o.id: o.to_agent() for o in (mine, other)},
        orders_by_code={o.pickup_code: o.id for o in (mine, other)},
    )
    policy = DoorPolicy(
        door="front",
        scopes=frozenset({"entry", "pickup"}),
        hours=["00:00-24:00"],
        timezone=__import__("zoneinfo").ZoneInfo("Asia/Shanghai"),
    )
    decision = decide_pass(claims, policy, state, now)
    assert decision.granted and decision.orders == (mine.id,)
    # Another store's scanner refuses it.
    assert (
        verifier(tmp_path).verify(body["pass"], store="demo-002", now=now).reason == "wrong_store"
    )  # type: ignore[union-attr]


async def test_no_pass_for_unknown_closed_or_foreign_orders(hub: InprocHub) -> None:
    order = await new_order(hub.orders, 1)
    status, body = await hub.get(f"{ORDERS}/meituan-404/pickup-pass")
    assert status == 404 and body["error"]["code"] == "unknown_order"
    assert (await hub.get(f"{ORDERS}/{order.id}/pickup-pass", token=OTHER_TOKEN))[0] == 403
    await cancel_order(hub.orders, order)
    status, body = await hub.get(f"{ORDERS}/{order.id}/pickup-pass")
    assert status == 409 and body["error"]["code"] == "cancelled"


async def test_the_courier_page_shows_the_code_and_checks_its_link(
    tmp_path: Path, hub: InprocHub
) -> None:
    order = await new_order(hub.orders, 12)
    other = await new_order(hub.orders, 13)
    _, body = await hub.get(f"{ORDERS}/{order.id}/pickup-pass")
    link = body["link"]
    assert link.startswith(f"/c/{STORE}/{order.id}?sig=")
    async with hub.client.get(link) as resp:  # no token: the link is the credential
        page = await resp.text()
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "no-store"
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    assert "取货码" in page and "#12" in page and order.pickup_code in page
    assert "<svg" in page and other.pickup_code not in page
    sig = link.rpartition("sig=")[2]
    for bad in (
        f"/c/{STORE}/{order.id}",
        f"/c/{STORE}/{order.id}?sig={'0' * len(sig)}",
        f"/c/{STORE}/{other.id}?sig={sig}",  # a link opens its own order only
        f"/c/demo-002/{order.id}?sig={sig}",
    ):
        async with hub.client.get(bad) as resp:
            text = await resp.text()
            assert resp.status == 403, bad
            assert order.pickup_code not in text and "<svg" not in text
    await hub.orders.mark_picked_up(STORE, order.id, courier="c-1", source="test")
    async with hub.client.get(link) as resp:
        assert resp.status == 409 and "已经取货" in await resp.text()


def pickup_event(seq: int, order_id: str, courier: str = "rider-7") -> dict[str, Any]:
    return make_event(
        seq,
        type_="pickup.completed",
        order=order_id,
        courier=courier,
        door="front",
        platform="meituan",
        platform_order_id="27001",
        items=[],
    )


async def test_a_pickup_event_marks_the_order_once_however_often_it_is_posted(
    hub: InprocHub,
) -> None:
    order = await new_order(hub.orders, 1)
    event = pickup_event(5, order.id)
    status, body = await hub.post_events([event, event])
    assert (status, body) == (200, {"accepted": 1, "duplicates": 1})

    async def picked_up() -> bool:
        got = await hub.orders.get(STORE, order.id)
        return got is not None and got.status == "picked_up"

    await poll(picked_up)
    assert (await hub.post_events([event]))[1] == {"accepted": 0, "duplicates": 1}
    await asyncio.sleep(0.2)  # a second marking would have happened by now
    log = await hub.orders.order_log(order.id)
    assert [e["source"] for e in log if e["to_status"] == "picked_up"][:1] == [f"store:{STORE}"]
    assert sum(1 for e in log if e["source"] == f"store:{STORE}") == 1
    assert [c["kind"] for c in await hub.orders.platform_calls(order.id)] == ["picking_done"]
    got = await hub.orders.get(STORE, order.id)
    assert got is not None and got.courier == "rider-7"


async def test_a_pickup_of_an_unknown_order_is_dropped_and_others_still_apply(
    hub: InprocHub, caplog: pytest.LogCaptureFixture
) -> None:
    order = await new_order(hub.orders, 1)
    status, _ = await hub.post_events(
        [pickup_event(1, "meituan-404"), pickup_event(2, order.id), make_event(3)]
    )
    assert status == 200

    async def picked_up() -> bool:
        got = await hub.orders.get(STORE, order.id)
        return got is not None and got.status == "picked_up"

    await poll(picked_up)
    await poll(lambda: re.search(r"has no order meituan-404", caplog.text))


async def test_an_order_for_an_offline_store_is_published_and_recorded_as_such(
    hub: InprocHub, broker: BrokerHandle
) -> None:
    async with watching(broker, f"shopgate/{STORE}/cmd") as seen:
        await seen.client.publish(
            f"shopgate/{STORE}/status", b'{"online": false}', qos=1, retain=True
        )
        await poll(lambda: hub.bus.store_online(STORE) is False)
        order = await new_order(hub.orders, 1)

        async def recorded() -> Any:
            d = await get_delivery(hub.db, STORE, order.id)
            return d if d is not None and d.outcome != "sending" else None

        delivery = await poll(recorded, within=3)  # not the 5 s a reply would be awaited
        assert delivery.outcome == "store_offline" and delivery.cmd == "orders.upsert"
        # The command is on its way all the same: the broker keeps it for the store.
        await seen.next(f"shopgate/{STORE}/cmd")
