"""The order service on SQLite and PostgreSQL: orders stored once, coded, logged, heard by
listeners; calls owed to platforms retried until done, across restarts; pickups and
refunds. Platform calls go to a fake platform on loopback (tests/support/platforms.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from cloud.config import HubConfig
from cloud.db.engine import Database
from cloud.db.tables import orders as orders_table
from cloud.orders.service import OrderService, UnknownShop
from cloud.platforms.base import NormalizedOrder, OrderItem, PlatformPush
from cloud.platforms.registry import configured_adapters
from tests.cloud.orders.order_fixtures import (
    OTHER_STORE,
    PLATFORM_TOKEN,
    STORE,
    fresh_database,
    hub_config,
)
from tests.support.platforms import FakePlatform

FAST = {"retry_base_s": 0.05, "retry_max_s": 0.2, "poll_s": 0.5}


def normalized(order_id: str, *, shop: str = STORE, **kw: Any) -> NormalizedOrder:
    fields: dict[str, Any] = {
        "platform": "meituan",
        "platform_order_id": order_id,
        "shop_id": shop,
        "day_seq": 3,
        "items": (
            OrderItem("牛奶 Milk", 2, 650, sku="milk-1l", barcode="6900000000011"),
            OrderItem("面包 Bread", 1, 900, sku="bread", shelf="B2"),
        ),
        "note": "请敲门",
        "total": 2200,
        "fees": 300,
        "commission": 180,
        "platform_status": "2",
    }
    fields.update(kw)
    return NormalizedOrder(**fields)


def new_push(order_id: str, **kw: Any) -> PlatformPush:
    order = normalized(order_id, **kw)
    return PlatformPush("meituan", "new", order_id, order.shop_id, order, order.platform_status)


def cancel_push(order_id: str, kind: str = "cancelled") -> PlatformPush:
    return PlatformPush("meituan", kind, order_id, STORE, None, "9", "用户取消")  # type: ignore[arg-type]


class Env:
    def __init__(self, cfg: HubConfig, db: Database, fake: FakePlatform) -> None:
        self.cfg = cfg
        self.db = db
        self.fake = fake
        self.clients = {n: a.client() for n, a in configured_adapters(cfg.platforms).items()}

    def service(self, **kw: Any) -> OrderService:
        return OrderService(self.cfg, self.db, self.clients, **{**FAST, **kw})

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()


@pytest.fixture
async def env(tmp_path: Path, db_url: str) -> AsyncIterator[Env]:
    async with FakePlatform("meituan", token=PLATFORM_TOKEN) as fake:
        cfg = hub_config(
            tmp_path, {"meituan": fake.url}, shelves={"6900000000011": "A1", "bread": "Z9"}
        )
        async with fresh_database(db_url, cfg) as db:
            e = Env(cfg, db, fake)
            try:
                yield e
            finally:
                await e.close()


async def until(predicate: Any, within_s: float = 5.0) -> Any:
    """Poll the database until `predicate()` gives something (nothing signals a change)."""
    for _ in range(int(within_s / 0.02)):
        if result := await predicate():
            return result
        await asyncio.sleep(0.02)
    raise TimeoutError(f"not within {within_s} s")


async def test_a_new_order_is_stored_for_the_agent_and_heard_once(env: Env) -> None:
    heard: list[tuple[str, str]] = []

    async def listener(order: Any, kind: str) -> None:
        heard.append((order.id, kind))

    async with env.service() as service:
        service.on_change(listener)
        stored = await service.ingest(new_push("1001"), source="meituan:push")
        again = await service.ingest(new_push("1001", note="changed"), source="meituan:push")
    assert stored is not None and again == stored
    agent = stored.to_agent()
    assert agent == {
        "id": "meituan-1001",
        "platform": "meituan",
        "platform_order_id": "1001",
        "day_seq": 3,
        "pickup_code": stored.pickup_code,
        "status": "pending",
        # The store's shelves map fills shelves the platform did not give (by barcode,
        # then sku); a barcode-less item goes by its sku.
        "items": [
            {"barcode": "6900000000011", "name": "牛奶 Milk", "qty": 2, "shelf": "A1"},
            {"barcode": "bread", "name": "面包 Bread", "qty": 1, "shelf": "B2"},
        ],
        "note": "请敲门",
    }
    assert heard == [("meituan-1001", "created")]
    assert (stored.total, stored.fees, stored.commission) == (2200, 300, 180)
    assert [o.id for o in await service.list_orders(STORE)] == ["meituan-1001"]
    assert await service.list_orders(OTHER_STORE) == []
    assert await service.get(OTHER_STORE, "meituan-1001") is None


async def test_an_order_of_an_unmapped_shop_is_refused(env: Env) -> None:
    service = env.service()
    with pytest.raises(UnknownShop, match="shop 'elsewhere'"):
        await service.ingest(new_push("1", shop="elsewhere"), source="meituan:push")
    other = await service.ingest(new_push("2", shop=OTHER_STORE), source="meituan:push")
    assert other is not None and other.store == OTHER_STORE


async def test_a_failing_confirmation_is_retried_with_its_reason_visible(env: Env) -> None:
    env.fake.fail_next("confirm_order", 2)
    async with env.service() as service:
        await service.ingest(new_push("2001"), source="meituan:push")
        await env.fake.wait_for_call("confirm_order", count=3)

        async def done() -> list[dict]:
            calls = await service.platform_calls("meituan-2001")
            return calls if calls[0]["status"] == "done" else []

        calls = await until(done)
    assert calls[0]["attempts"] == 3
    assert all(c.signature_ok for c in env.fake.calls)
    log = [e["detail"] for e in await service.order_log("meituan-2001")]
    assert log[0].startswith("new meituan order, day #3, code ")
    assert "confirm_order: failed (attempt 1)" in log[1] and "busy" in log[1]
    assert "confirm_order: failed (attempt 2)" in log[2]
    assert log[3] == "confirm_order: done (attempt 3)"


async def test_a_confirmation_owed_survives_an_outage_and_a_restart(
    env: Env, tmp_path: Path
) -> None:
    # The platform is away: the call fails and stays owed, with the reason.
    await env.fake.close()
    async with env.service() as service:
        await service.ingest(new_push("3001"), source="meituan:push")

        async def failed_once() -> list[dict]:
            calls = await service.platform_calls("meituan-3001")
            return calls if calls[0]["attempts"] >= 1 else []

        calls = await until(failed_once)
    assert calls[0]["status"] == "pending"
    assert "ClientConnectorError" in calls[0]["error"] or "Connect" in calls[0]["error"]
    # The platform is back (same address), and a new service (a restarted hub) makes the call.
    fake = FakePlatform("meituan", token=PLATFORM_TOKEN)
    port = env.fake.port
    await fake.start(port)
    try:
        async with env.service() as service:
            call = await fake.wait_for_call("confirm_order")
            assert call.signature_ok and call.params["order_id"] == "3001"

            async def done() -> bool:
                return (await service.platform_calls("meituan-3001"))[0]["status"] == "done"

            await until(done)
    finally:
        await fake.close()


async def test_calls_give_up_after_the_last_attempt(env: Env) -> None:
    env.fake.fail_next("confirm_order", 10)
    async with env.service(max_attempts=2) as service:
        await service.ingest(new_push("3101"), source="meituan:push")

        async def failed() -> list[dict]:
            calls = await service.platform_calls("meituan-3101")
            return calls if calls[0]["status"] == "failed" else []

        calls = await until(failed)
    assert calls[0]["attempts"] == 2 and "busy" in calls[0]["error"]
    log = await service.order_log("meituan-3101")
    assert "failed for good after 2 attempts" in log[-1]["detail"]


async def test_pickup_is_idempotent_and_tells_the_platform_once(env: Env) -> None:
    heard: list[str] = []

    async def listener(order: Any, kind: str) -> None:
        heard.append(kind)

    async with env.service() as service:
        service.on_change(listener)
        await service.ingest(new_push("4001"), source="meituan:push")
        assert await service.mark_picked_up(STORE, "nope", courier="c", source="s") is None
        assert (
            await service.mark_picked_up(OTHER_STORE, "meituan-4001", courier="c", source="s")
            is None
        )
        first = await service.mark_picked_up(
            STORE, "meituan-4001", courier="rider-1", source="store:demo-001"
        )
        second = await service.mark_picked_up(
            STORE, "meituan-4001", courier="rider-1", source="store:demo-001"
        )
        call = await env.fake.wait_for_call("picking_done")
    assert first is not None and first.status == "picked_up" and first.courier == "rider-1"
    assert second == first
    assert call.signature_ok and call.params["order_id"] == "4001"
    assert heard == ["created", "picked_up"]
    log = await service.order_log("meituan-4001")
    changes = [e for e in log if e["from_status"] != e["to_status"]]
    assert [(e["from_status"], e["to_status"], e["source"]) for e in changes] == [
        (None, "pending", "meituan:push"),
        ("pending", "picked_up", "store:demo-001"),
    ]
    # The code is free again once the order is picked up.
    assert [o.id for o in await service.list_orders(STORE, status="picked_up")] == ["meituan-4001"]
    assert await service.list_orders(STORE, status="pending") == []


async def test_cancel_then_refund_after_pickup(env: Env) -> None:
    heard: list[tuple[str, str]] = []

    async def listener(order: Any, kind: str) -> None:
        heard.append((order.id, kind))

    service = env.service()
    service.on_change(listener)
    await service.ingest(new_push("5001"), source="meituan:push")
    await service.ingest(new_push("5002"), source="meituan:push")
    cancelled = await service.ingest(cancel_push("5001"), source="meituan:push")
    assert cancelled is not None and cancelled.status == "cancelled"
    # A pending order's confirmation not made yet is dropped with it.
    assert [c["status"] for c in await service.platform_calls("meituan-5001")] == ["dropped"]

    await service.mark_picked_up(STORE, "meituan-5002", courier="r", source="store:demo-001")
    refunded = await service.ingest(cancel_push("5002", "refunded"), source="meituan:push")
    assert refunded is not None and refunded.status == "picked_up" and refunded.refunded_at
    assert await service.ingest(cancel_push("5002", "refunded"), source="meituan:push")
    assert [(r["order_id"], r["amount"]) for r in await service.refunds(STORE)] == [
        ("meituan-5002", 2200)
    ]
    assert [o.id for o in await service.list_orders(STORE, status="refunded")] == ["meituan-5002"]
    assert ("meituan-5001", "cancelled") in heard and ("meituan-5002", "refunded") in heard
    assert len([h for h in heard if h[1] == "refunded"]) == 1
    # A pickup reported for a cancelled order changes nothing but is logged.
    again = await service.mark_picked_up(STORE, "meituan-5001", courier="r", source="store:x")
    assert again is not None and again.status == "cancelled"
    assert (
        "pickup by courier r of a cancelled order"
        in (await service.order_log("meituan-5001"))[-1]["detail"]
    )
    # Pushes about orders the hub never had are no-ops.
    assert await service.ingest(cancel_push("9999"), source="meituan:push") is None


async def test_platform_status_changes_are_logged_not_broadcast(env: Env) -> None:
    heard: list[str] = []

    async def listener(order: Any, kind: str) -> None:
        heard.append(kind)

    service = env.service()
    service.on_change(listener)
    await service.ingest(new_push("6001"), source="meituan:push")
    status = PlatformPush("meituan", "status", "6001", STORE, None, "4")
    after = await service.ingest(status, source="meituan:push")
    assert after is not None and after.platform_status == "4" and after.status == "pending"
    assert heard == ["created"]
    assert (await service.order_log("meituan-6001"))[-1]["detail"] == "meituan status 4"


async def test_listing_by_update_time(env: Env) -> None:
    service = env.service()
    first = await service.ingest(new_push("7001"), source="t")
    assert first is not None
    await service.ingest(new_push("7002"), source="t")
    later = await service.list_orders(STORE, updated_after=first.updated_at)
    assert [o.id for o in later] == ["meituan-7002"]


async def test_a_listener_that_fails_does_not_stop_the_others(env: Env) -> None:
    heard: list[str] = []

    async def broken(order: Any, kind: str) -> None:
        raise RuntimeError("listener bug")

    async def fine(order: Any, kind: str) -> None:
        heard.append(kind)

    service = env.service()
    service.on_change(broken)
    service.on_change(fine)
    assert await service.ingest(new_push("8001"), source="t") is not None
    assert heard == ["created"]


async def test_the_database_refuses_two_pending_orders_with_one_code(env: Env) -> None:
    row = {
        "store_id": STORE,
        "platform": "meituan",
        "shop_id": STORE,
        "view_id": "",
        "day_seq": 1,
        "pickup_code": "123456",
        "status": "pending",
        "platform_status": "",
        "note": "",
        "items": "[]",
        "total": 0,
        "fees": 0,
        "commission": 0,
        "created_at": "2025-01-01T00:00:00.000000Z",
        "updated_at": "2025-01-01T00:00:00.000000Z",
    }
    async with env.db.write() as conn:
        await conn.execute(orders_table.insert().values(id="a", platform_order_id="a", **row))
        await conn.execute(
            orders_table.insert().values(
                id="b", platform_order_id="b", **{**row, "status": "picked_up"}
            )
        )
    with pytest.raises(IntegrityError):
        async with env.db.write() as conn:
            await conn.execute(orders_table.insert().values(id="c", platform_order_id="c", **row))


async def test_a_rush_of_pushes_is_stored_in_few_transactions_each_order_once(env: Env) -> None:
    """A lunch rush: 60 orders pushed at once, 20 of them pushed twice. Every order is
    stored once with its own code, its log line and its confirm call, heard once by the
    listeners, and the rush shares writes (one commit is one fsync on SQLite)."""
    from sqlalchemy import event, func, select

    from cloud.db.tables import order_log, platform_calls

    inserts = 0

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal inserts
        inserts += statement.startswith("INSERT INTO orders ")

    event.listen(env.db.engine.sync_engine, "before_cursor_execute", count)
    heard: list[str] = []

    async def listener(order: Any, kind: str) -> None:
        heard.append(order.id)

    async with env.service() as service:
        service.on_change(listener)
        pushes = [new_push(str(2000 + i)) for i in range(60)] + [
            new_push(str(2000 + i)) for i in range(20)
        ]
        stored = await asyncio.gather(*(service.ingest(p, source="meituan:push") for p in pushes))
        stored_orders = [s for s in stored if s is not None]
        assert len(stored_orders) == 80
        by_id = {s.id: s for s in stored_orders[:60]}
        assert len(by_id) == 60
        # A repeated push answers with the order as first stored, code included.
        for s in stored_orders[60:]:
            assert s.pickup_code == by_id[s.id].pickup_code
        codes = [s.pickup_code for s in by_id.values()]
        assert len(set(codes)) == 60
        assert sorted(heard) == sorted(by_id)
        async with env.db.read() as conn:
            rows = (await conn.execute(select(func.count()).select_from(orders_table))).scalar()
            created = select(func.count()).where(order_log.c.from_status.is_(None))
            logs = (await conn.execute(created)).scalar()
            calls = await conn.execute(
                select(func.count()).where(platform_calls.c.kind == "confirm_order")
            )
            assert (rows, logs, calls.scalar()) == (60, 60, 60)
    event.remove(env.db.engine.sync_engine, "before_cursor_execute", count)
    assert inserts < 20, f"{inserts} order inserts for 60 orders: they were not grouped"
