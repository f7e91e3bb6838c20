"""`checkout.paid` from the hub to the store: signed, over a real mosquitto, to the real
agent command endpoint (RemoteOps, which checks the signature); outcomes kept on the
payment. (A store that takes it and answers ok: tests/agent/services/test_checkout.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cloud.bus import HubBus
from cloud.db.engine import Database
from cloud.payments.service import Payment, Payments
from cloud.payments.settings import PaymentsConfig
from tests.agent.mqtt.harness import STORE, Keys, running_ops, until
from tests.cloud.delivery.test_hub_bus import running_bus
from tests.support.broker import BrokerHandle

ITEMS = [{"barcode": "6901234567892", "name": "可乐", "qty": 2, "price": 3.5}]


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(str(tmp_path / "hub" / "hub.db"))
    yield database
    await database.close()


async def new_payment(payments: Payments) -> Payment:
    return await payments.create(
        STORE, checkout="co-1", cart="co-1-c1", amount_fen=700, items=ITEMS
    )


async def delivery_of(payments: Payments, pid: str, settled: set[str]) -> str:
    found: list[str] = []

    async def check() -> bool:
        p = await payments.get(pid)
        assert p is not None
        found[:] = [p.delivery or ""]
        return found[0] in settled

    async with asyncio.timeout(10):
        while not await check():  # noqa: ASYNC110 - a database row, no event
            await asyncio.sleep(0.02)
    return found[0]


async def test_the_store_gets_a_signed_checkout_paid_and_its_refusal_is_kept(
    tmp_path: Path, broker: BrokerHandle, keys: Keys, db: Database
) -> None:
    async with (
        running_ops(tmp_path, keys, broker.url) as store,
        running_bus(broker.url, keys, "hub-pay") as bus,
    ):
        payments = Payments(db, PaymentsConfig(), bus_of=lambda: bus, retry_delays_s=(0.05,))
        p = await new_payment(payments)
        _, first = await payments.confirm(p.id, amount_fen=700, method="wechat", ref="42")
        assert first
        await until(lambda: bool(store.handler.calls), 5)
        # It passed the agent's signature, expiry and store checks, with these args:
        assert store.handler.calls[0] == (
            "checkout.paid",
            {
                "checkout": "co-1",
                "payment": p.id,
                "cart": "co-1-c1",
                "amount": 7.0,
                "method": "wechat",
            },
        )
        # This test store knows no checkout: a refusal, kept for a refund, not retried.
        assert await delivery_of(payments, p.id, {"refused"}) == "refused"
        assert len(store.handler.calls) == 1
        await payments.stop()


async def test_a_payment_confirmed_without_a_bus_is_sent_when_the_hub_is_back(
    tmp_path: Path, broker: BrokerHandle, keys: Keys, db: Database
) -> None:
    offline = Payments(db, PaymentsConfig(), bus_of=lambda: None)
    p = await new_payment(offline)
    await offline.confirm(p.id, amount_fen=700, method="demo", ref=None)
    assert await delivery_of(offline, p.id, {"unsent"}) == "unsent"
    await offline.stop()
    async with (
        running_ops(tmp_path, keys, broker.url) as store,
        running_bus(broker.url, keys, "hub-pay") as bus,
    ):
        back: Payments = Payments(db, PaymentsConfig(), bus_of=lambda: bus)
        assert await back.resume() == 1
        await until(lambda: bool(store.handler.calls), 5)
        assert store.handler.calls[0][1]["payment"] == p.id
        assert await delivery_of(back, p.id, {"refused", "acked"}) == "refused"
        assert await back.resume() == 0  # settled: not sent again
        await back.stop()


async def test_an_unreachable_broker_leaves_the_payment_paid_and_unsent(db: Database) -> None:
    # A bus that was never started: the broker is unreachable, delivery reads unsent.
    bus = HubBus(
        mqtt_url="mqtt://127.0.0.1:9",
        topic_root="shopgate",
        key=__import__(
            "cryptography.hazmat.primitives.asymmetric.ed25519", fromlist=["x"]
        ).Ed25519PrivateKey.generate(),
        kid="k",
        instance_id="nobody",
        connect_wait_s=0.1,
    )
    payments = Payments(db, PaymentsConfig(), bus_of=lambda: bus, retry_delays_s=(0.01,))
    p = await new_payment(payments)
    await payments.confirm(p.id, amount_fen=700, method="demo", ref=None)
    assert await delivery_of(payments, p.id, {"unsent"}) == "unsent"
    await payments.stop()
