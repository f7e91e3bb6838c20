"""The ERP routes on the real application: failures listed for the dashboard, products
pushed in one go, tokens checked; the worker runs with the application."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from cloud.api.erp import ERP_SYNC
from cloud.app import create_app
from tests.cloud.erp.erp_env import BREAD, MILK, STORE_TOKEN, WDT_STORE, erp_config
from tests.cloud.orders.order_fixtures import fresh_database
from tests.support.erp import FakeJst, FakeWdt

AUTH = {"Authorization": f"Bearer {STORE_TOKEN}"}


async def test_products_are_pushed_once_and_failures_are_listed(tmp_path: Path) -> None:
    async with FakeWdt() as wdt, FakeJst() as jst:
        cfg = erp_config(tmp_path, wdt.api_url, jst.url)
        async with fresh_database(f"sqlite:///{tmp_path / 'hub.db'}", cfg) as db:
            async with TestClient(TestServer(create_app(cfg, db))) as client:
                body = {"products": [{"barcode": MILK, "name": "牛奶", "price": 650, "cost": 400},
                                     {"barcode": BREAD, "name": "面包", "price": 900}]}  # fmt: skip
                path = f"/api/v1/stores/{WDT_STORE}/erp/products"
                r = await client.post(path, json=body, headers=AUTH)
                assert r.status == 202 and await r.json() == {"queued": True, "products": 2}
                r = await client.post(path, json=body, headers=AUTH)
                assert (await r.json())["queued"] is False
                sync = client.app[ERP_SYNC]
                for _ in range(100):
                    if (await sync.outbox.counts()).get("done"):
                        break
                    await asyncio.sleep(0.05)
                assert set(wdt.goods) == {MILK, BREAD}
                spec = wdt.goods[MILK]["spec_list"][0]
                assert (spec["barcode"], spec["retail_price"]) == (MILK, "6.50")
                assert len(wdt.calls_to("goods_push.php")) == 1

                await wdt.down("503")
                await sync.push_products(WDT_STORE, [])  # nothing to push: nothing queued
                r = await client.post(
                    path, json={"products": [{"barcode": "x1", "name": "X", "price": 1}]},
                    headers=AUTH,
                )  # fmt: skip
                assert r.status == 202
                for _ in range(100):
                    failures = (
                        await (await client.get("/api/v1/erp/failures", headers=AUTH)).json()
                    )["failures"]
                    if failures:
                        break
                    await asyncio.sleep(0.05)
                (failure,) = failures
                assert failure["kind"] == "products" and failure["status"] == "pending"
                assert "503" in failure["error"] and failure["next_try"]
                mine = await client.get(f"/api/v1/stores/{WDT_STORE}/erp/failures", headers=AUTH)
                assert (await mine.json())["failures"] == failures
                other = await client.get("/api/v1/stores/demo-002/erp/failures", headers=AUTH)
                assert other.status == 403
                r = await client.post(
                    path, json={"products": [{"name": "no barcode"}]}, headers=AUTH
                )
                assert r.status == 400
                assert (await client.get("/api/v1/erp/failures")).status == 401
