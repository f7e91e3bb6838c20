"""The hub's events API through aiohttp's test client, on SQLite and on PostgreSQL.

The application, its middlewares and its database are the real ones; only the process
around them (tests/cloud/test_hub_service.py starts that) is left out.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from cloud.app import create_app
from cloud.config import HubConfig
from cloud.db.engine import Database
from cloud.db.principals import sync_principals
from cloud.db.tables import events as events_table
from cloud.db.tables import rejections
from tests.support.hub import make_event, make_events
from tests.support.postgres import drop_database, postgres_database

TOKEN = "tok-store-one-0123456789abcdef"
OTHER_TOKEN = "tok-store-two-0123456789abcdef"
MERCHANT_TOKEN = "tok-merchant-0123456789abcdef"
EVENTS = "/api/v1/stores/demo-001/events"


def hub_config(tmp_path: Path, max_body_mb: int = 2) -> HubConfig:
    return HubConfig.model_validate(
        {
            "http": {"listen": "127.0.0.1:0", "max_body_mb": max_body_mb},
            "storage": {"dir": str(tmp_path / "hub")},
            "signing": {"key_file": str(tmp_path / "keys" / "hub-signing.pem"), "kid": "demo"},
            "mqtt": {"url": "mqtt://127.0.0.1:1883"},
            "stores": [
                {"id": "demo-001", "token": TOKEN},
                {"id": "demo-002", "token": OTHER_TOKEN},
                {"id": "demo-003", "token": "tok-store-three-0123456789abc"},
            ],
            "merchants": [
                {"id": "acme", "token": MERCHANT_TOKEN, "stores": ["demo-001", "demo-002"]}
            ],
        }
    )


@pytest.fixture
async def client(db: Database, tmp_path: Path) -> AsyncIterator[TestClient]:
    cfg = hub_config(tmp_path)
    await sync_principals(db, cfg.stores, cfg.merchants)
    async with TestClient(TestServer(create_app(cfg, db))) as c:
        yield c


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def post(
    client: TestClient, events: list[dict], *, token: str = TOKEN, path: str = EVENTS
) -> tuple[int, Any]:
    resp = await client.post(path, json={"events": events}, headers=auth(token))
    return resp.status, await resp.json()


async def post_raw(client: TestClient, data: bytes, **headers: str) -> tuple[int, Any]:
    resp = await client.post(EVENTS, data=data, headers={**auth(), **headers})
    return resp.status, await resp.json()


async def listed(
    client: TestClient, query: str = "", token: str = TOKEN, path: str = EVENTS
) -> tuple[int, Any]:
    resp = await client.get(path + query, headers=auth(token))
    return resp.status, await resp.json()


async def stored_count(db: Database, store: str = "demo-001") -> int:
    async with db.read() as conn:
        query = select(func.count()).select_from(events_table)
        return (await conn.execute(query.where(events_table.c.store_id == store))).scalar_one()


async def rejection_rows(db: Database) -> list[Any]:
    async with db.read() as conn:
        return list(await conn.execute(select(rejections).order_by(rejections.c.id)))


# --- accepted and duplicates ------------------------------------------------------------


async def test_a_new_batch_is_accepted_whole(client: TestClient, db: Database) -> None:
    assert await post(client, make_events(1, 10)) == (200, {"accepted": 10, "duplicates": 0})
    assert await stored_count(db) == 10


async def test_the_same_batch_again_is_all_duplicates(client: TestClient, db: Database) -> None:
    batch = make_events(1, 50)
    assert await post(client, batch) == (200, {"accepted": 50, "duplicates": 0})
    assert await post(client, batch) == (200, {"accepted": 0, "duplicates": 50})
    assert await stored_count(db) == 50


async def test_overlapping_batches_count_only_new_events(client: TestClient, db: Database) -> None:
    assert await post(client, make_events(1, 30)) == (200, {"accepted": 30, "duplicates": 0})
    assert await post(client, make_events(21, 30)) == (200, {"accepted": 20, "duplicates": 10})
    assert await stored_count(db) == 50


async def test_an_id_twice_in_one_batch_is_stored_once(client: TestClient, db: Database) -> None:
    one, two = make_event(1), make_event(2)
    assert await post(client, [one, two, one]) == (200, {"accepted": 2, "duplicates": 1})
    assert await stored_count(db) == 2


async def test_an_empty_batch_is_fine(client: TestClient) -> None:
    assert await post(client, []) == (200, {"accepted": 0, "duplicates": 0})


async def test_same_id_in_two_stores_is_two_events(client: TestClient, db: Database) -> None:
    mine = make_event(1)
    theirs = {**mine, "store": "demo-002"}
    other = "/api/v1/stores/demo-002/events"
    assert await post(client, [mine]) == (200, {"accepted": 1, "duplicates": 0})
    assert await post(client, [theirs], token=OTHER_TOKEN, path=other) == (
        200,
        {"accepted": 1, "duplicates": 0},
    )
    assert await stored_count(db, "demo-002") == 1


async def test_a_large_batch_is_stored_quickly(client: TestClient, db: Database) -> None:
    batch = make_events(1, 5000, door="front", note="x" * 100)
    started = time.perf_counter()
    assert await post(client, batch) == (200, {"accepted": 5000, "duplicates": 0})
    first = time.perf_counter() - started
    started = time.perf_counter()
    assert await post(client, batch) == (200, {"accepted": 0, "duplicates": 5000})
    again = time.perf_counter() - started
    # Measured ~0.1-0.2 s each on 2 cores; 2 s leaves room for a slow CI machine.
    assert first < 2.0 and again < 2.0, (first, again)
    assert await stored_count(db) == 5000


# --- bad batches: 400, nothing stored, recorded -------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("id", "", "events[3].id"),
        ("id", "has space", "events[3].id"),
        ("id", 17, "events[3].id"),
        ("store", "demo-002", "must be 'demo-001'"),
        ("seq", 0, "events[3].seq"),
        ("seq", -1, "events[3].seq"),
        ("seq", "4", "events[3].seq"),
        ("seq", 4.0, "events[3].seq"),
        ("seq", True, "events[3].seq"),
        ("ts", "2025-01-31 08:00", "events[3].ts"),
        ("ts", "2025-02-30T08:00:00Z", "events[3].ts"),
        ("ts", 1738310400, "events[3].ts"),
        ("type", "", "events[3].type"),
        ("type", None, "events[3].type"),
        ("data", [], "events[3].data"),
        ("data", "text", "events[3].data"),
    ],
)
async def test_one_bad_event_refuses_the_whole_batch(
    client: TestClient, db: Database, field: str, value: Any, needle: str
) -> None:
    batch = make_events(1, 6)
    batch[3] = {**batch[3], field: value}
    status, body = await post(client, batch)
    assert status == 400
    assert body["error"]["code"] == "bad_event"
    assert body["error"]["index"] == 3
    assert body["error"]["field"] == field
    assert needle in body["error"]["message"]
    assert await stored_count(db) == 0
    [row] = await rejection_rows(db)
    assert row.store_id == "demo-001" and row.status == 400
    assert needle in row.reason
    assert row.body_bytes == len(json.dumps({"events": batch}).encode())


async def test_a_missing_field_is_named(client: TestClient, db: Database) -> None:
    batch = make_events(1, 3)
    del batch[2]["ts"]
    status, body = await post(client, batch)
    assert status == 400
    assert body["error"]["message"] == (
        "events[2].ts: must be an RFC 3339 time like 2025-01-31T08:00:00Z, got missing"
    )
    assert body["error"]["event_id"] == batch[2]["id"]


async def test_the_first_bad_event_is_the_one_reported(client: TestClient) -> None:
    batch = make_events(1, 5)
    batch[1]["seq"] = 0
    batch[4]["data"] = None
    status, body = await post(client, batch)
    assert (status, body["error"]["index"], body["error"]["field"]) == (400, 1, "seq")


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "not JSON"),
        (b"{not json", "not JSON"),
        (b"\xff\xfe\x00garbage", "not"),
        (b"[]", "must be a JSON object"),
        (b'{"event": []}', '"events" is missing'),
        (b'{"events": {}}', '"events" is an object, not a list'),
        (b'{"events": [1]}', "events[0] must be an object"),
        (b'{"events": [{"seq": NaN}]}', "not valid JSON"),
    ],
)
async def test_a_malformed_body_is_refused_and_recorded(
    client: TestClient, db: Database, data: bytes, needle: str
) -> None:
    status, body = await post_raw(client, data)
    assert status == 400
    assert needle in body["error"]["message"]
    [row] = await rejection_rows(db)
    assert (row.status, row.body_bytes) == (400, len(data))


async def test_a_bad_batch_after_a_good_one_keeps_the_good_one(
    client: TestClient, db: Database
) -> None:
    assert (await post(client, make_events(1, 5)))[0] == 200
    bad = make_events(6, 5)
    bad[4]["store"] = "elsewhere"
    assert (await post(client, bad))[0] == 400
    assert await stored_count(db) == 5


# --- tokens -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer not-a-known-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
    ],
)
async def test_a_missing_or_unknown_token_is_401(
    client: TestClient, db: Database, headers: dict[str, str]
) -> None:
    for method in ("POST", "GET"):
        resp = await client.request(
            method, EVENTS, json={"events": [make_event(1)]}, headers=headers
        )
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await resp.json())["error"]["code"] == "unauthorized"
    assert await stored_count(db) == 0


async def test_another_stores_token_is_403(client: TestClient, db: Database) -> None:
    status, body = await post(client, [make_event(1)], token=OTHER_TOKEN)
    assert (status, body["error"]["code"]) == (403, "forbidden")
    assert (await listed(client, token=OTHER_TOKEN))[0] == 403
    assert await stored_count(db) == 0


async def test_a_token_for_an_unknown_store_is_403(client: TestClient) -> None:
    path = "/api/v1/stores/nowhere/events"
    assert (await post(client, [make_event(1, store="nowhere")], path=path))[0] == 403


async def test_a_merchant_reads_its_stores_but_posts_nothing(client: TestClient) -> None:
    assert (await post(client, make_events(1, 3)))[0] == 200
    status, body = await listed(client, token=MERCHANT_TOKEN)
    assert status == 200 and [e["seq"] for e in body["events"]] == [1, 2, 3]
    assert (await post(client, [make_event(4)], token=MERCHANT_TOKEN))[0] == 403
    not_theirs = "/api/v1/stores/demo-003/events"
    assert (await listed(client, token=MERCHANT_TOKEN, path=not_theirs))[0] == 403


async def test_health_needs_no_token(client: TestClient, db: Database) -> None:
    resp = await client.get("/healthz")
    body = await resp.json()
    assert resp.status == 200
    assert body["ok"] is True and body["db"] == db.dialect and body["version"]


# --- gzip and size ------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_compressed_body_is_read(client: TestClient, db: Database, encoding: str) -> None:
    raw = json.dumps({"events": make_events(1, 100)}).encode()
    data = gzip.compress(raw) if encoding == "gzip" else zlib.compress(raw)
    assert await post_raw(client, data, **{"Content-Encoding": encoding}) == (
        200,
        {"accepted": 100, "duplicates": 0},
    )
    assert await stored_count(db) == 100


async def test_a_body_over_the_limit_is_413_and_recorded(client: TestClient, db: Database) -> None:
    # the limit here is 2 MiB
    batch = make_events(1, 6000, note="x" * 400)
    status, body = await post(client, batch)
    assert (status, body["error"]["code"]) == (413, "too_large")
    assert await stored_count(db) == 0
    [row] = await rejection_rows(db)
    assert row.status == 413


async def test_a_gzip_bomb_is_413_not_memory(client: TestClient, db: Database) -> None:
    # 64 MiB of spaces compress to ~64 KiB; the limit applies after decompression.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    data = compressor.compress(b'{"events": [' + b" " * (64 << 20)) + compressor.flush()
    assert len(data) < 200_000
    status, body = await post_raw(client, data, **{"Content-Encoding": "gzip"})
    assert (status, body["error"]["code"]) == (413, "too_large")
    assert await stored_count(db) == 0


# --- listing ------------------------------------------------------------------------------


async def test_events_come_back_in_seq_order_exactly_as_sent(client: TestClient) -> None:
    batch = make_events(1, 20)
    batch[5]["data"] = {"reason": "expired", "名字": "中文", "n": 1.5, "nested": {"a": [1, None]}}
    batch[7]["extra_field"] = "kept"
    assert (await post(client, list(reversed(batch[10:]))))[0] == 200
    assert (await post(client, batch[:10]))[0] == 200
    status, body = await listed(client)
    assert status == 200
    assert body["events"] == batch


async def test_paging_with_after_seq_and_limit(client: TestClient) -> None:
    assert (await post(client, make_events(1, 25)))[0] == 200
    seen: list[int] = []
    after = 0
    while True:
        status, body = await listed(client, f"?after_seq={after}&limit=7")
        assert status == 200 and len(body["events"]) <= 7
        if not body["events"]:
            break
        seen += [e["seq"] for e in body["events"]]
        after = body["events"][-1]["seq"]
    assert seen == list(range(1, 26))
    assert (await listed(client, "?after_seq=25"))[1] == {"events": []}


@pytest.mark.parametrize(
    "query",
    ["?after_seq=-1", "?after_seq=x", "?limit=0", "?limit=5001", "?limit=1.5", "?after_seq=1e3"],
)
async def test_bad_paging_is_400(client: TestClient, query: str) -> None:
    status, body = await listed(client, query)
    assert (status, body["error"]["code"]) == (400, "bad_query")


async def test_other_stores_events_are_not_listed(client: TestClient) -> None:
    assert (await post(client, make_events(1, 3)))[0] == 200
    other = "/api/v1/stores/demo-002/events"
    assert await listed(client, token=OTHER_TOKEN, path=other) == (200, {"events": []})


async def test_unknown_paths_and_methods_answer_json(client: TestClient) -> None:
    resp = await client.get("/api/v1/nothing", headers=auth())
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    resp = await client.delete(EVENTS, headers=auth())
    assert resp.status == 405 and (await resp.json())["error"]["code"] == "method_not_allowed"


# --- the database going away --------------------------------------------------------------


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


async def test_health_is_503_when_postgresql_is_gone(pg_url: str, tmp_path: Path) -> None:
    db = await Database.open(pg_url)
    try:
        cfg = hub_config(tmp_path)
        await sync_principals(db, cfg.stores, cfg.merchants)
        async with TestClient(TestServer(create_app(cfg, db))) as client:
            assert (await client.get("/healthz")).status == 200
            await asyncio.to_thread(drop_database, pg_url)
            resp = await client.get("/healthz")
            assert resp.status == 503
            assert (await resp.json())["ok"] is False
            status, body = await post(client, [make_event(1)])
            assert (status, body["error"]["code"]) == (503, "unavailable")
    finally:
        await db.close()
