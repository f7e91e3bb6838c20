"""The hub's payment API, pay page and provider notify, on SQLite and on PostgreSQL.

The real application and database through aiohttp's test client; the signed command to
the store over the real broker is covered by tests/agent/services/test_checkout.py and
tests/e2e/test_checkout.py (here the hub has no bus, so delivery reads `unsent`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from cloud.app import create_app
from cloud.config import HubConfig
from cloud.db.engine import Database
from cloud.db.principals import sync_principals
from cloud.db.tables import PAYMENT_TABLES
from cloud.payments.notify import NotifyError, signature, verify
from tests.support.api_shapes import assert_documented

TOKEN = "tok-store-one-0123456789abcdef"
OTHER_TOKEN = "tok-store-two-0123456789abcdef"
SECRET = "notify-secret-0123456789"
PAYMENTS = "/api/v1/stores/demo-001/payments"
payments_table, notifications_table = PAYMENT_TABLES

ITEMS = [
    {"barcode": "6901234567892", "name": "可乐 330ml", "qty": 2, "price": 3.5},
    {"barcode": "96385074", "name": "口香糖", "qty": 1, "price": 12.0},
]


def hub_config(tmp_path: Path, **payments: Any) -> HubConfig:
    return HubConfig.model_validate(
        {
            "http": {"listen": "127.0.0.1:0", "public_url": "https://hub.example.com"},
            "storage": {"dir": str(tmp_path / "hub")},
            "signing": {"key_file": str(tmp_path / "keys" / "hub-signing.pem"), "kid": "demo"},
            "mqtt": {"url": "mqtt://127.0.0.1:9"},
            "stores": [
                {"id": "demo-001", "token": TOKEN},
                {"id": "demo-002", "token": OTHER_TOKEN},
            ],
            "payments": {"demo": True, "notify_secret": SECRET} | payments,
        }
    )


async def _client(db: Database, cfg: HubConfig) -> TestClient:
    await sync_principals(db, cfg.stores, cfg.merchants)
    return TestClient(TestServer(create_app(cfg, db)))


@pytest.fixture
async def client(db: Database, tmp_path: Path) -> AsyncIterator[TestClient]:
    async with await _client(db, hub_config(tmp_path)) as c:
        yield c


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create(client: TestClient, **over: Any) -> tuple[int, Any]:
    body = {"checkout": "co-1", "cart": "co-1-cart1", "amount": 19.0, "items": ITEMS} | over
    resp = await client.post(PAYMENTS, json=body, headers=auth(over.pop("token", TOKEN)))
    return resp.status, await resp.json()


async def notify(
    client: TestClient,
    payment: str,
    amount: Any,
    *,
    secret: str = SECRET,
    ts: int | None = None,
    status: str = "SUCCESS",
    sig: str | None = None,
) -> tuple[int, Any]:
    body = json.dumps(
        {
            "payment": payment,
            "amount": amount,
            "status": status,
            "transaction_id": "4200001234",
            "method": "wechat",
        }
    ).encode()
    stamp = str(ts if ts is not None else int(time.time()))
    headers = {
        "X-Shopgate-Timestamp": stamp,
        "X-Shopgate-Signature": sig or signature(secret, stamp, body),
        "Content-Type": "application/json",
    }
    resp = await client.post(f"/api/v1/payments/{payment}/notify", data=body, headers=headers)
    return resp.status, await resp.json()


async def notifications(db: Database) -> list[tuple[bool, str]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(notifications_table.c.ok, notifications_table.c.outcome).order_by(
                notifications_table.c.id
            )
        )
        return [(r.ok, r.outcome) for r in rows]


async def test_a_store_asks_for_a_payment_and_gets_a_qr_url(client: TestClient) -> None:
    status, body = await create(client)
    assert status == 201, body
    p = body["payment"]
    assert p["id"].startswith("pay_") and len(p["id"]) > 20  # the pay page's only secret
    assert (p["amount"], p["status"], p["checkout"], p["cart"]) == (
        19.0,
        "pending",
        "co-1",
        "co-1-cart1",
    )
    assert body["qr_url"] == f"https://hub.example.com/pay/{p['id']}"
    assert_documented("POST", "/api/v1/stores/{store}/payments", status, body)
    resp = await client.get(f"{PAYMENTS}/{p['id']}", headers=auth())
    got = await resp.json()
    assert got["payment"]["items"] == ITEMS
    assert_documented("GET", "/api/v1/stores/{store}/payments/{payment}", resp.status, got)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"amount": 18.0}, "not the sum"),
        ({"amount": 19.001}, "2 decimals"),
        ({"amount": "19"}, "number of yuan"),
        ({"amount": 0}, "positive"),
        ({"items": []}, "items must be"),
        ({"items": [{"qty": 0, "price": 1}]}, "qty"),
        ({"checkout": ""}, "checkout"),
        ({"ttl_seconds": 5}, "ttl_seconds"),
    ],
)
async def test_a_bad_request_is_refused_with_the_reason(
    client: TestClient, over: dict[str, Any], message: str
) -> None:
    status, body = await create(client, **over)
    assert status == 400 and message in body["error"]["message"]
    assert_documented("POST", "/api/v1/stores/{store}/payments", status, body)


async def test_only_the_store_itself_may_ask(client: TestClient) -> None:
    assert (await create(client, token=OTHER_TOKEN))[0] == 403
    assert (await create(client, token="nope"))[0] == 401


async def test_the_demo_page_shows_the_amount_and_confirming_pays_once(
    client: TestClient, db: Database
) -> None:
    _, body = await create(client)
    pid = body["payment"]["id"]
    page = await (await client.get(f"/pay/{pid}")).text()
    assert "¥19.00" in page and "确认支付" in page and "可乐 330ml × 2" in page
    first = await client.post(f"/pay/{pid}/confirm")
    assert first.status == 200 and "支付成功" in await first.text()
    again = await client.post(f"/pay/{pid}/confirm")
    assert again.status == 200 and "确认支付" not in await again.text()
    resp = await client.get(f"{PAYMENTS}/{pid}", headers=auth())
    p = (await resp.json())["payment"]
    assert (p["status"], p["method"]) == ("paid", "demo")
    # No bus in this hub: the store could not be told, and the row says so.
    async with asyncio.timeout(3):
        while (await _row(db, pid)).delivery == "sending":  # noqa: ASYNC110 - a row, no event
            await asyncio.sleep(0.02)
    assert (await _row(db, pid)).delivery == "unsent"


async def _row(db: Database, pid: str) -> Any:
    async with db.read() as conn:
        return (await conn.execute(select(payments_table).where(payments_table.c.id == pid))).one()


async def test_the_demo_button_is_off_unless_configured(db: Database, tmp_path: Path) -> None:
    async with await _client(db, hub_config(tmp_path, demo=False)) as c:
        _, body = await create(c)
        pid = body["payment"]["id"]
        assert "确认支付" not in await (await c.get(f"/pay/{pid}")).text()
        assert (await c.post(f"/pay/{pid}/confirm")).status == 404


async def test_a_signed_notification_pays_once_and_repeats_are_harmless(
    client: TestClient, db: Database
) -> None:
    _, body = await create(client)
    pid = body["payment"]["id"]
    assert await notify(client, pid, 19.0) == (200, {"code": "SUCCESS"})
    assert await notify(client, pid, 19.0) == (200, {"code": "SUCCESS"})
    row = await _row(db, pid)
    assert (row.status, row.method, row.provider_ref) == ("paid", "wechat", "4200001234")
    assert await notifications(db) == [(True, "paid"), (True, "already_paid")]


async def test_bad_notifications_are_refused_and_recorded(client: TestClient, db: Database) -> None:
    _, body = await create(client)
    pid = body["payment"]["id"]
    status, reply = await notify(client, pid, 19.0, secret="wrong-secret")
    assert (status, reply["error"]["code"]) == (401, "bad_signature")
    status, reply = await notify(client, pid, 19.0, ts=int(time.time()) - 3600)
    assert (status, reply["error"]["code"]) == (400, "stale")
    status, reply = await notify(client, pid, 1.0)
    assert (status, reply["error"]["code"]) == (400, "amount_mismatch")
    status, reply = await notify(client, "pay_nonexistent", 19.0)
    assert (status, reply["error"]["code"]) == (404, "unknown_payment")
    assert (await _row(db, pid)).status == "pending"
    assert [o for ok, o in await notifications(db) if not ok] == [
        "bad_signature",
        "stale",
        "amount_mismatch",
        "unknown_payment",
    ]


async def test_an_expired_payment_cannot_be_paid(client: TestClient, db: Database) -> None:
    _, body = await create(client)
    pid = body["payment"]["id"]
    async with db.write() as conn:
        await conn.execute(
            update(payments_table)
            .where(payments_table.c.id == pid)
            .values(expires_at="2000-01-01T00:00:00.000000Z")
        )
    status, reply = await notify(client, pid, 19.0)
    assert (status, reply["error"]["code"]) == (409, "expired")
    resp = await client.post(f"/pay/{pid}/confirm")
    assert resp.status == 409 and "超时" in await resp.text()
    assert (await _row(db, pid)).status == "pending"  # read back as expired, never paid


async def test_a_cancelled_payment_cannot_be_paid_and_a_paid_one_cannot_be_cancelled(
    client: TestClient,
) -> None:
    _, body = await create(client)
    pid = body["payment"]["id"]
    resp = await client.post(f"{PAYMENTS}/{pid}/cancel", headers=auth())
    assert (await resp.json())["payment"]["status"] == "cancelled"
    assert (await notify(client, pid, 19.0))[1]["error"]["code"] == "cancelled"
    _, body = await create(client, cart="co-1-cart2")
    pid2 = body["payment"]["id"]
    await notify(client, pid2, 19.0)
    resp = await client.post(f"{PAYMENTS}/{pid2}/cancel", headers=auth())
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "already_paid"
    other = await client.post(
        f"/api/v1/stores/demo-002/payments/{pid2}/cancel", headers=auth(OTHER_TOKEN)
    )
    assert other.status == 404


async def test_racing_confirmations_pay_exactly_once(client: TestClient, db: Database) -> None:
    _, body = await create(client)
    pid = body["payment"]["id"]
    results = await asyncio.gather(*(notify(client, pid, 19.0) for _ in range(8)))
    assert all(r == (200, {"code": "SUCCESS"}) for r in results)
    outcomes = [o for _, o in await notifications(db)]
    assert outcomes.count("paid") == 1 and outcomes.count("already_paid") == 7


async def test_notify_without_a_secret_configured_refuses_everything(
    db: Database, tmp_path: Path
) -> None:
    async with await _client(db, hub_config(tmp_path, notify_secret="")) as c:
        _, body = await create(c)
        pid = body["payment"]["id"]
        status, reply = await notify(c, pid, 19.0, secret="")
        assert (status, reply["error"]["code"]) == (503, "not_configured")


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=200), ts=st.integers(0, 2**40), flip=st.integers(0, 63))
def test_only_the_exact_signature_verifies(body: bytes, ts: int, flip: int) -> None:
    stamp = str(ts)
    good = signature(SECRET, stamp, body)
    bad = good[: 7 + flip] + ("0" if good[7 + flip] != "0" else "1") + good[8 + flip :]
    for sig in (bad, signature("other", stamp, body), signature(SECRET, str(ts + 1), body)):
        with pytest.raises(NotifyError) as e:
            verify(SECRET, stamp, sig, body, now=ts, skew=300)
        assert e.value.code == "bad_signature"
    try:
        verify(SECRET, stamp, good, body, now=ts, skew=300)
    except NotifyError as e:
        assert e.code == "bad_body"  # signed, but not a notification's JSON
