"""Pickup codes: 6 digits, unique among a store's pending orders, whatever happens to the
orders around them; given again once an order is picked up or cancelled."""

from __future__ import annotations

import asyncio
import logging
import random
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from cloud.db.engine import Database
from cloud.db.tables import orders
from cloud.orders.codes import NoFreeCode, new_pickup_code
from cloud.orders.service import OrderService
from cloud.platforms.base import NormalizedOrder, OrderItem, PlatformPush
from tests.cloud.orders.order_fixtures import OTHER_STORE, STORE, fresh_database, hub_config


@given(st.sets(st.integers(0, 999_999).map(lambda n: f"{n:06d}"), max_size=50), st.randoms())
def test_a_new_code_has_six_digits_and_is_free(taken: set[str], rnd: random.Random) -> None:
    code = new_pickup_code(taken, draw=rnd.randrange)
    assert len(code) == 6 and code.isdigit() and code not in taken


def test_the_last_free_code_is_found_and_then_none() -> None:
    taken = {f"{n}" for n in range(10) if n != 7}
    assert new_pickup_code(taken, length=1, draw=lambda n: 3) == "7"
    with pytest.raises(NoFreeCode):
        new_pickup_code(taken | {"7"}, length=1)


def push(order_id: str, shop: str) -> PlatformPush:
    order = NormalizedOrder(
        "meituan", order_id, shop, 1, (OrderItem("x", 1, sku="x"),), platform_status="2"
    )
    return PlatformPush("meituan", "new", order_id, shop, order)


operations = st.lists(
    st.tuples(
        st.sampled_from(["new", "new", "new", "cancel", "pickup"]),
        st.sampled_from([STORE, OTHER_STORE]),
        st.integers(0, 40),
    ),
    max_size=40,
)


@settings(max_examples=25, deadline=None)
@given(operations, st.randoms(use_true_random=False))
def test_codes_stay_unique_among_open_orders(ops: list[tuple[str, str, int]], rnd: Any) -> None:
    # One-digit codes (ten of them) so that collisions and exhaustion really happen.
    async def scenario(folder: Path) -> None:
        cfg = hub_config(folder, auto_accept=False)
        db = await Database.open(str(folder / "hub.db"))
        try:
            service = OrderService(cfg, db, {}, code_length=1, draw=rnd.randrange)
            made: list[tuple[str, str]] = []
            for op, store, n in ops:
                if op == "new":
                    try:
                        order = await service.ingest(push(f"{store}-{len(made)}", store), "t")
                    except NoFreeCode:
                        pending = await service.list_orders(store, status="pending")
                        assert len(pending) == 10
                        continue
                    assert order is not None
                    made.append((store, order.platform_order_id))
                elif made:
                    s, pid = made[n % len(made)]
                    if op == "cancel":
                        cancel = PlatformPush("meituan", "cancelled", pid, s)
                        await service.ingest(cancel, "t")
                    else:
                        await service.mark_picked_up(s, f"meituan-{pid}", courier="c", source="t")
                for each in (STORE, OTHER_STORE):
                    codes = [
                        o.pickup_code for o in await service.list_orders(each, status="pending")
                    ]
                    assert len(codes) == len(set(codes)), codes
        finally:
            await db.close()

    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(scenario(Path(folder)))


async def test_a_code_already_open_is_drawn_again_without_failing_the_batch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "cloud.orders")
    draws = iter([0, 0, 5, 0, 5, 7])  # every push draws 000000 first
    cfg = hub_config(tmp_path, auto_accept=False)
    db = await Database.open(str(tmp_path / "hub.db"))
    try:
        service = OrderService(cfg, db, {}, draw=lambda n: next(draws))
        first = await service.ingest(push("A1", STORE), "t")
        # Two pushes in one batch: both draw the open 000000 (one also the batch's 000005).
        second, third = await asyncio.gather(
            service.ingest(push("A2", STORE), "t"), service.ingest(push("A3", STORE), "t")
        )
    finally:
        await db.close()
    assert first is not None and second is not None and third is not None
    assert first.pickup_code == "000000"
    assert {second.pickup_code, third.pickup_code} == {"000005", "000007"}
    assert "collided" not in caplog.text  # read before the insert, not found by failing


async def test_two_hubs_drawing_the_same_code_at_once_get_different_ones(
    tmp_path: Path, shared_pg_url: str
) -> None:
    # Two services (two hubs) on one PostgreSQL, each drawing 000000 first. The second to
    # commit either read 000000 as taken already, or did not see the first's uncommitted
    # insert and trips the partial unique index, and then draws again.
    cfg = hub_config(tmp_path, auto_accept=False)
    async with fresh_database(shared_pg_url, cfg) as db_a:
        db_b = await Database.open(shared_pg_url)
        try:
            hub_a = OrderService(cfg, db_a, {}, draw=lambda n: 0)
            hub_b = OrderService(cfg, db_b, {}, draw=lambda n: 0)
            a, b = await asyncio.gather(
                hub_a.ingest(push("A1", STORE), "t"), hub_b.ingest(push("B1", STORE), "t")
            )
            assert a is not None and b is not None
            assert {a.pickup_code, b.pickup_code} == {"000000", "000001"}
            # The index is there for the race the read cannot see: a third order given an
            # open code by hand is refused by the database itself.
            with pytest.raises(IntegrityError):
                async with db_a.write() as conn:
                    row = {**await _row(conn, a.id), "id": "meituan-C1", "platform_order_id": "C1"}
                    await conn.execute(orders.insert().values(**row))
        finally:
            await db_b.close()


async def _row(conn: Any, order_id: str) -> dict[str, Any]:
    found = await conn.execute(select(orders).where(orders.c.id == order_id))
    return dict(found.mappings().one())
