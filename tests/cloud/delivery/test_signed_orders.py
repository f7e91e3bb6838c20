"""The order list as agents take it: signed by the hub (Accept: application/jwt), bound
to the question and the agent's nonce, and checked here with the agent's own verifier.
The plain JSON form stays for merchants and for agents older than signed sync."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from agent.rules.passes import PassVerifier
from agent.rules.signed_sync import SYNC_SCOPE, SyncAnswer, verify_sync
from tests.cloud.delivery.inproc import (
    MERCHANT_TOKEN,
    STORE,
    TOKEN,
    InprocHub,
    cancel_order,
    inproc_hub,
    new_order,
)
from tests.support.agent import Keys, make_keys
from tests.support.broker import BrokerHandle

ORDERS = f"/api/v1/stores/{STORE}/orders"
JWT = "application/jwt"


@pytest.fixture
async def hub(tmp_path: Path, broker: BrokerHandle) -> AsyncIterator[InprocHub]:
    make_keys(tmp_path)
    async with inproc_hub(tmp_path, broker.url) as h:
        yield h


@pytest.fixture
def verifier(tmp_path: Path) -> PassVerifier:
    keys: Keys = make_keys(tmp_path)
    return PassVerifier({keys.kid: keys.key.public_key()}, skew_seconds=60)


async def signed_get(
    hub: InprocHub, query: dict[str, str], *, token: str = TOKEN, accept: str = JWT
) -> tuple[int, dict[str, str], str]:
    headers = {"Authorization": f"Bearer {token}", "Accept": accept}
    async with hub.client.get(ORDERS, params=query, headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.text()


async def test_the_hub_signs_the_answer_to_the_agents_question(
    hub: InprocHub, verifier: PassVerifier
) -> None:
    order = await new_order(hub.orders, 1)
    nonce = secrets.token_urlsafe(24)
    status, headers, body = await signed_get(hub, {"status": "pending", "nonce": nonce})
    assert status == 200 and headers["Content-Type"].startswith(JWT)
    assert "Accept" in headers["Vary"] and headers["Cache-Control"] == "no-store"
    claims = jwt.decode(body, options={"verify_signature": False})
    assert claims["iss"] == "shopgate-hub" and claims["aud"] == STORE
    assert claims["scope"] == SYNC_SCOPE and 0 < claims["exp"] - claims["iat"] <= 300
    taken = verify_sync(
        verifier,
        body,
        store=STORE,
        now=claims["iat"],
        nonce=nonce,
        status=["pending"],
        updated_after=None,
        high_water=None,
    )
    assert isinstance(taken, SyncAnswer), taken
    assert taken.orders == [order.to_agent()]

    mark = taken.now
    assert mark is not None
    await cancel_order(hub.orders, order)
    nonce = secrets.token_urlsafe(24)
    query = {"status": "cancelled", "updated_after": mark, "nonce": nonce}
    status, _, body = await signed_get(hub, query)
    taken = verify_sync(
        verifier,
        body,
        store=STORE,
        now=claims["iat"],
        nonce=nonce,
        status=["cancelled"],
        updated_after=mark,
        high_water=None,
    )
    assert isinstance(taken, SyncAnswer), taken
    assert [o["id"] for o in taken.orders] == [order.id]


async def test_the_plain_form_stays_for_merchants_and_older_agents(hub: InprocHub) -> None:
    await new_order(hub.orders, 1)
    for accept in ("application/json", "*/*"):
        status, headers, body = await signed_get(
            hub, {"status": "pending"}, token=MERCHANT_TOKEN, accept=accept
        )
        assert status == 200 and headers["Content-Type"].startswith("application/json")
        assert "orders" in body and "Accept" in headers["Vary"]
    # A merchant may ask for the signed form too: it names the store it is for.
    status, _, body = await signed_get(hub, {"status": "pending"}, token=MERCHANT_TOKEN)
    assert status == 200 and jwt.decode(body, options={"verify_signature": False})["aud"] == STORE


@pytest.mark.parametrize("nonce", ["short", "x" * 129, "bad nonce!" * 3])
async def test_a_bad_nonce_is_refused(hub: InprocHub, nonce: str) -> None:
    status, _, body = await signed_get(hub, {"status": "pending", "nonce": nonce})
    assert status == 400 and "nonce" in body


async def test_the_signed_answer_is_for_one_moment(hub: InprocHub, verifier: PassVerifier) -> None:
    """A copy kept for later is refused: another request carries another nonce, and the
    answer expires within minutes."""
    nonce = secrets.token_urlsafe(24)
    _, _, body = await signed_get(hub, {"status": "pending", "nonce": nonce})
    claims: dict[str, Any] = jwt.decode(body, options={"verify_signature": False})
    ask: dict[str, Any] = {"store": STORE, "status": ["pending"], "updated_after": None}
    later = verify_sync(
        verifier, body, now=claims["iat"], nonce=secrets.token_urlsafe(24), high_water=None, **ask
    )
    assert str(getattr(later, "reason", "")) == "replayed"
    tomorrow = verify_sync(
        verifier, body, now=claims["iat"] + 86400, nonce=nonce, high_water=None, **ask
    )
    assert str(getattr(tomorrow, "reason", "")) == "expired"
