"""OrderSync against the real hub process: a store that missed the pushes catches up.

The hub runs as `shopgate-hub run`; orders are put into its database by the real order
service in this process (the same SQLite file, as a second hub process would). The
store's side is a real journal and PendingOrders, and it trusts the hub's public key
(the hub signs its answers: tests/security/test_signed_sync.py has the attacks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.clock import Clock
from agent.journal import Journal
from agent.journal.view import JournalView
from agent.order_sync import OrderSync, SyncFailed
from agent.rules.passes import PassVerifier
from agent.services.orders import PendingOrders
from cloud.db.engine import Database
from cloud.orders.service import OrderService
from cloud.signing import load_private_key, write_keypair
from tests.cloud.delivery.inproc import SHOP, STORE, cancel_order, hub_config, new_order, poll
from tests.support.broker import free_port
from tests.support.hub import HubHandle, start_hub

CLOSED_BROKER = {"SHOPGATE_MQTT_URL": "mqtt://127.0.0.1:9"}


def map_shop(raw: dict[str, Any]) -> None:
    raw["stores"][0]["platforms"] = {"meituan": SHOP}
    raw["stores"][0]["auto_accept"] = False


def hub_process(tmp_path: Path, port: int = 0) -> HubHandle:
    return start_hub(tmp_path, edit=map_shop, env=CLOSED_BROKER, port=port, token="t" * 32)


@contextlib.asynccontextmanager
async def order_service(tmp_path: Path, hub: HubHandle) -> AsyncIterator[OrderService]:
    db = await Database.open(str(hub.db_path))
    try:
        yield OrderService(hub_config(tmp_path, "mqtt://127.0.0.1:9"), db, {})
    finally:
        await db.close()


@contextlib.asynccontextmanager
async def store_orders(tmp_path: Path) -> AsyncIterator[PendingOrders]:
    (tmp_path / "agent").mkdir(exist_ok=True)
    journal = await Journal.open(tmp_path / "agent" / "journal.db", STORE, Clock())
    try:
        yield PendingOrders(journal, {}, code_length=6)
    finally:
        await journal.close()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubHandle]:
    with hub_process(tmp_path) as handle:
        yield handle


def hub_keys(tmp_path: Path) -> PassVerifier:
    """What the store trusts: the public half of the key the hub signs with (start_hub
    uses tmp_path/keys, making it when missing)."""
    if not (tmp_path / "keys" / "hub-signing.pem").exists():
        write_keypair(tmp_path / "keys", "demo")
    key, kid = load_private_key(tmp_path / "keys" / "hub-signing.pem")
    return PassVerifier({kid: key.public_key()}, skew_seconds=60)


def syncer(orders: PendingOrders, url: str, **kw: Any) -> OrderSync:
    tmp_path = Path(orders._journal.path).parents[1]
    return OrderSync(
        orders,
        hub_url=url,
        store_id=STORE,
        token=kw.pop("token", "t" * 32),
        verifier=hub_keys(tmp_path),
        journal=orders._journal,
        **kw,
    )


async def test_a_store_offline_during_the_push_catches_up_on_start(
    tmp_path: Path, hub: HubHandle
) -> None:
    async with order_service(tmp_path, hub) as service, store_orders(tmp_path) as orders:
        first = await new_order(service, 1)
        second = await new_order(service, 2)
        sync = syncer(orders, hub.url)
        await sync.start()
        try:
            await poll(lambda: first.id in orders.by_id and second.id in orders.by_id)
            held = orders.by_id[first.id]
            assert held["pickup_code"] == first.pickup_code and held["status"] == "pending"
            assert orders.by_code[second.pickup_code] == second.id
            assert JournalView(tmp_path / "agent" / "journal.db").order_status(first.id) == (
                "pending"
            )
            # Cancelled at the hub while the store was not listening: the next sync
            # (an MQTT reconnect calls sync_now) cancels it here.
            await cancel_order(service, first)
            sync.sync_now()
            await poll(lambda: orders.by_id[first.id]["status"] == "cancelled")
            assert orders.by_id[second.id]["status"] == "pending"
            # Nothing changed: a pass writes nothing.
            result = await sync.sync_once()
            assert (result.upserted, result.cancelled) == ([], [])
        finally:
            await sync.stop()


async def test_what_the_store_picked_up_stays_picked_up(tmp_path: Path, hub: HubHandle) -> None:
    async with order_service(tmp_path, hub) as service, store_orders(tmp_path) as orders:
        order = await new_order(service, 1)
        # Picked up here; the pickup event has not reached the hub yet.
        await orders.upsert([order.to_agent() | {"status": "picked_up"}])
        sync = syncer(orders, hub.url)
        await sync.start()
        try:
            result = await sync.sync_once()
        finally:
            await sync.stop()
        assert result.kept == [order.id] and result.upserted == []
        assert orders.by_id[order.id]["status"] == "picked_up"
        view = JournalView(tmp_path / "agent" / "journal.db")
        assert view.order_status(order.id) == "picked_up"


async def test_an_unreachable_hub_is_retried_quietly_and_caught_up_with_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="agent.order_sync")
    port = free_port()
    async with store_orders(tmp_path) as orders:
        sync = syncer(orders, f"http://127.0.0.1:{port}", retry_min_s=0.02, retry_max_s=0.1)
        await sync.start()
        try:
            with pytest.raises(SyncFailed, match="cannot reach the hub"):
                await sync.sync_once()
            await poll(lambda: sync.failures >= 4)
            warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
            assert len(warnings) == 1 and "retrying" in warnings[0].getMessage()
            hub = await asyncio.to_thread(hub_process, tmp_path, port)
            try:
                async with order_service(tmp_path, hub) as service:
                    order = await new_order(service, 7)
                    sync.sync_now()
                    # The order lands as the pass is applied, the streak ends as it closes.
                    await poll(lambda: order.id in orders.by_id and sync.failures == 0, within=10)
                    assert sync.last_error is None
            finally:
                await asyncio.to_thread(hub.stop)
        finally:
            await sync.stop()
        assert "t" * 32 not in caplog.text  # the token never reaches the log


async def test_a_refusing_hub_is_a_clear_failure(tmp_path: Path, hub: HubHandle) -> None:
    async with store_orders(tmp_path) as orders:
        sync = syncer(orders, hub.url, token="wrong-token")
        await sync.start()
        try:
            with pytest.raises(SyncFailed, match="401"):
                await sync.sync_once()
        finally:
            await sync.stop()
