"""Old pushes, replayed pushes and signatures no platform sends, through the hub's real
application and a fake platform on loopback.

Meituan, Eleme and JD Daojia sign the time of each push (`timestamp`) into it: a push
signed more than `platforms.push_max_age_seconds` (default 300) from the hub's clock is
refused 401 `stale_push`, in the platform's own answer shape. Douyin signs no time; its
replays, like any replay inside the window, must change nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.api.platforms import ORDERS
from cloud.app import create_app
from cloud.platforms import base
from cloud.platforms.base import PlatformAuthError, PlatformBadRequest, PushRequest
from cloud.platforms.registry import PLATFORMS as ADAPTERS
from tests.cloud.orders.order_fixtures import (
    PLATFORM_TOKEN,
    SECRET,
    STORE,
    fresh_database,
    hub_config,
    rows,
)
from tests.cloud.platforms.test_platform_push_flow import Hub, new_order
from tests.support import platforms as published
from tests.support.platforms import PLATFORMS, FakePlatform

TIMED = ("meituan", "eleme", "jddj")  # the platforms that sign the time of a push


@pytest.fixture(params=PLATFORMS)
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakePlatform]:
    async with FakePlatform(request.param, token=PLATFORM_TOKEN) as platform:
        yield platform


@pytest.fixture(params=TIMED)
async def timed(request: pytest.FixtureRequest) -> AsyncIterator[FakePlatform]:
    async with FakePlatform(request.param, token=PLATFORM_TOKEN) as platform:
        yield platform


async def _hub(tmp_path: Path, fake: FakePlatform, **settings: Any) -> AsyncIterator[Hub]:
    """The hub application on loopback, selling on `fake`; `settings` go under platforms:."""
    cfg = hub_config(tmp_path, {fake.name: fake.url})
    cfg = cfg.model_copy(update={"platforms": cfg.platforms.model_copy(update=settings)})
    async with fresh_database(f"sqlite:///{tmp_path / 'hub.db'}", cfg) as db:
        app = create_app(cfg, db)
        async with TestClient(TestServer(app)) as client:
            yield Hub(client, db, app[ORDERS], cfg)


@pytest.fixture
async def hub(tmp_path: Path, fake: FakePlatform) -> AsyncIterator[Hub]:
    async for handle in _hub(tmp_path, fake):
        yield handle


@pytest.fixture
async def timed_hub(tmp_path: Path, timed: FakePlatform) -> AsyncIterator[Hub]:
    async for handle in _hub(tmp_path, timed):
        yield handle


# What each platform reads as "not taken", beside the hub's own error object.
REFUSED_SHAPE = {
    "meituan": lambda body: body["data"] == "ng" and body["error"]["msg"],
    "eleme": lambda body: (
        body["body"]["errno"] != 0
        and body["body"]["error"]
        and body["cmd"] == "resp.order.create"
        and body["sign"] == published.eleme_sign(_flat(body), SECRET)
    ),
    "jddj": lambda body: body["code"] not in ("0", 0) and body["msg"],
    "douyin": lambda body: body["code"] != 0 and body["msg"],
}


def _flat(reply: dict[str, Any]) -> dict[str, str]:
    """Eleme's answer as its signature covers it: body as the JSON text that was signed."""
    body = json.dumps(reply["body"], ensure_ascii=False, separators=(",", ":"))
    return {k: str(v) for k, v in reply.items() if k not in ("sign", "error")} | {"body": body}


@pytest.mark.parametrize("age_s", [-360, 360, 86400])
async def test_a_push_signed_outside_the_window_is_refused_in_the_platforms_shape(
    timed_hub: Hub, timed: FakePlatform, age_s: int
) -> None:
    # A push captured off the wire (a proxy's log, a leaked capture) and sent again later:
    # correctly signed, but not now.
    order = new_order()
    status, body = await timed.push_order(timed_hub.url, order, at=time.time() - age_s)
    assert status == 401, body
    assert body["error"]["code"] == "stale_push", body
    assert "push_max_age_seconds" in body["error"]["message"]
    assert REFUSED_SHAPE[timed.name](body), body
    assert await timed_hub.service.list_orders(STORE) == []
    assert timed.calls_of("fetch_order") == []
    recorded = await rows(timed_hub.db, "SELECT status, reason FROM rejections")
    assert [r["status"] for r in recorded] == [401]
    assert recorded[0]["reason"].startswith("stale push")


@pytest.mark.parametrize("age_s", [-240, 0, 240])
async def test_a_push_signed_inside_the_window_is_taken(
    timed_hub: Hub, timed: FakePlatform, age_s: int
) -> None:
    status, body = await timed.push_order(timed_hub.url, new_order(), at=time.time() - age_s)
    assert status == 200, body
    assert len(await timed_hub.service.list_orders(STORE)) == 1


async def test_the_window_is_configurable(tmp_path: Path, timed: FakePlatform) -> None:
    async for hub in _hub(tmp_path, timed, push_max_age_seconds=30):
        status, body = await timed.push_order(hub.url, new_order(), at=time.time() - 60)
        assert (status, body["error"]["code"]) == (401, "stale_push")
        status, _ = await timed.push_order(hub.url, new_order(), at=time.time() - 10)
        assert status == 200


async def test_a_signed_push_without_its_timestamp_is_refused(
    timed_hub: Hub, timed: FakePlatform
) -> None:
    # Each of these platforms sends one in every push; a push without one cannot be dated.
    params = dict(timed._new_order_push(new_order())[1])
    url = timed.webhook(timed_hub.url, timed.name)
    signed = timed._signed(url, params, timed.secret, time.time())
    del signed["timestamp"]
    resign = {
        "meituan": lambda p: published.meituan_sig(url, p, timed.secret),
        "eleme": lambda p: published.eleme_sign(p, timed.secret),
        "jddj": lambda p: published.jddj_sign(p, timed.secret),
    }[timed.name]
    signed["sig" if timed.name == "meituan" else "sign"] = resign(signed)
    assert timed._session is not None
    async with timed._session.post(url, data=signed) as resp:
        status, body = resp.status, await resp.json()
    assert status == 400, body
    assert body["error"]["code"] == "bad_push"
    assert "timestamp" in body["error"]["message"]
    assert await timed_hub.service.list_orders(STORE) == []


async def test_a_replayed_push_inside_the_window_changes_nothing(
    hub: Hub, fake: FakePlatform
) -> None:
    heard: list[tuple[str, str]] = []

    async def listener(order: Any, kind: str) -> None:
        heard.append((order.id, kind))

    hub.service.on_change(listener)
    order = new_order()
    fake.orders[order.order_id] = order
    at = time.time()

    async def send(push: tuple[str, Any]) -> int:
        # The very same request each time: same fields, same time, same signature.
        shape, content = push
        if shape == "json":
            status, body = await fake.push_signed_body(hub.url, content)
        else:
            status, body = await fake.push_signed_params(hub.url, dict(content), at=at)
        assert status == 200, body
        return status

    created = fake._new_order_push(order)
    cancelled = fake._cancel_push(order.order_id, "用户取消")
    if fake.name == "eleme":  # Eleme's ticket is per request: fix it, to replay it as it was
        created[1]["ticket"] = "T-CREATE"
        cancelled[1]["ticket"] = "T-CANCEL"
    await send(created)
    await send(created)
    await send(cancelled)
    await send(created)
    await send(cancelled)

    oid = f"{fake.name}-{order.order_id}"
    stored = await hub.service.list_orders(STORE)
    assert [(o.id, o.status) for o in stored] == [(oid, "cancelled")]
    assert heard == [(oid, "created"), (oid, "cancelled")]
    log = await hub.service.order_log(oid)
    assert [e["to_status"] for e in log if e["from_status"] != e["to_status"]] == [
        "pending",
        "cancelled",
    ]
    # A platform that pushes only ids was asked for the order once.
    assert len(fake.calls_of("fetch_order")) == (0 if fake.name == "meituan" else 1)


@pytest.mark.parametrize(
    "signature",
    ["é" * 32, "签名" * 16, "\u00ff" * 64, "0" * 31 + "\u0100", "\U0001f600", " ", "ZZ"],
)
async def test_a_signature_no_platform_sends_is_401_never_500(
    hub: Hub, fake: FakePlatform, signature: str
) -> None:
    status, body = await fake.push_order_with_signature(hub.url, new_order(), signature)
    assert status == 401, body
    assert body["error"]["code"] == "bad_signature"
    assert REFUSED_SHAPE[fake.name](body), body
    assert await hub.service.list_orders(STORE) == []


# -- the checks alone, property-tested -------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    now=st.integers(1_000_000_000, 4_000_000_000),
    offset=st.integers(-(10**7), 10**7),
    window=st.integers(1, 86400),
)
def test_freshness_is_exactly_the_window_either_side(now: int, offset: int, window: int) -> None:
    if abs(offset) <= window:
        base.check_fresh(now + offset, now=now, max_age=window)
    else:
        with pytest.raises(base.PlatformStalePush):
            base.check_fresh(now + offset, now=now, max_age=window)


def _push_request(name: str, signature: str, extra: dict[str, str]) -> PushRequest:
    url = "http://127.0.0.1:8080/api/v1/platforms/" + name + "/push"
    if name == "douyin":
        body = b'[{"tag":"101","msg_id":"1","data":"{\\"p_id\\":1}"}]'
        headers = {"app-id": "demo", "event-sign": signature, **extra}
        return PushRequest(url, "POST", {}, headers, body, "application/json")
    key = "sig" if name == "meituan" else "sign"
    app = {"meituan": "app_id", "eleme": "source", "jddj": "app_key"}[name]
    query = {app: "demo", "timestamp": str(int(time.time())), key: signature, **extra}
    return PushRequest(url, "POST", query, {}, b"", "")


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(sorted(ADAPTERS)),
    signature=st.text(st.characters(exclude_categories=()), max_size=80),
    extra=st.dictionaries(st.sampled_from(["order_id", "cmd", "body"]), st.text(max_size=20)),
)
def test_any_signature_text_is_a_refusal_never_a_crash(
    name: str, signature: str, extra: dict[str, str]
) -> None:
    cfg = hub_config(Path("/nonexistent"))
    adapter = ADAPTERS[name](getattr(cfg.platforms, name))
    with pytest.raises((PlatformAuthError, PlatformBadRequest)):
        adapter.verify(_push_request(name, signature, extra))


async def test_a_platform_with_an_empty_secret_takes_no_push(
    tmp_path: Path, fake: FakePlatform
) -> None:
    # With no secret, anyone can compute the "signature": such a hub must trust no push,
    # whatever its listen address (a reverse proxy hides where callers come from).
    cfg = hub_config(tmp_path, {fake.name: fake.url})
    creds = getattr(cfg.platforms, fake.name).model_copy(update={"secret": ""})
    cfg = cfg.model_copy(update={"platforms": cfg.platforms.model_copy(update={fake.name: creds})})
    async with fresh_database(f"sqlite:///{tmp_path / 'hub.db'}", cfg) as db:
        app = create_app(cfg, db)
        async with TestClient(TestServer(app)) as client:
            hub = Hub(client, db, app[ORDERS], cfg)
            status, body = await fake.push_order(hub.url, new_order(), secret="")
            assert status == 401, body
            assert body["error"]["code"] == "bad_signature"
            assert "secret" in body["error"]["message"]
            assert await hub.service.list_orders(STORE) == []
