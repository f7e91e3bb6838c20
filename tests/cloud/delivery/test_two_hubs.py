"""Two hub processes on one broker and one PostgreSQL database: what the hubs consume
from MQTT through the shared subscription is consumed once, by one of them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy import select

from cloud.db.engine import Database
from cloud.db.tables import store_status_log
from tests.cloud.delivery.inproc import poll
from tests.support.broker import BrokerHandle
from tests.support.hub import HubHandle, start_hub
from tests.support.postgres import postgres_database

TOKEN = "t" * 32


def start_two(tmp_path: Path, db_url: str, broker: BrokerHandle) -> list[HubHandle]:
    env = {"SHOPGATE_MQTT_URL": broker.url}
    return [start_hub(tmp_path / name, db_url=db_url, env=env, token=TOKEN) for name in ("a", "b")]


@pytest.fixture
def db_url() -> Iterator[str]:
    with postgres_database() as url:  # outside the test's event loop: it runs its own
        yield url


async def test_a_status_change_is_logged_once_by_one_of_two_hubs(
    tmp_path: Path, broker: BrokerHandle, db_url: str
) -> None:
    hubs = await asyncio.to_thread(start_two, tmp_path, db_url, broker)
    try:
        for hub in hubs:
            await poll(lambda h=hub: "mqtt: connected to" in h.log(), within=10)
        async with aiomqtt.Client(broker.host, broker.port) as client:
            for n in range(6):
                status = {"online": n % 2 == 0, "version": "t", "n": n}
                await client.publish(
                    "shopgate/demo-001/status", json.dumps(status), qos=1, retain=False
                )
        db = await Database.open(db_url)
        try:

            async def rows() -> list[dict]:
                query = select(store_status_log).order_by(store_status_log.c.id)
                async with db.read() as conn:
                    return [dict(r) for r in (await conn.execute(query)).mappings()]

            await poll(lambda: _at_least(rows, 6), within=5)
            await asyncio.sleep(0.3)  # a second consumer would have written by now
            logged = await rows()
        finally:
            await db.close()
        assert sorted(json.loads(r["status"])["n"] for r in logged) == list(range(6))
        assert [
            r["online"] for r in sorted(logged, key=lambda r: json.loads(r["status"])["n"])
        ] == [n % 2 == 0 for n in range(6)]
        # The broker shared the work between the two hubs.
        assert len({r["hub"] for r in logged}) == 2
    finally:
        for hub in hubs:
            await asyncio.to_thread(hub.stop)


async def _at_least(rows, n: int) -> bool:  # type: ignore[no-untyped-def]
    return len(await rows()) >= n
