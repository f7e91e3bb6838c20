"""Payment notifications carrying what no provider sends: a non-ASCII signature, header
bytes that are not UTF-8. Each is a refusal the caller can read (4xx, recorded), never a
500; the check itself is property-tested against any text."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.db.engine import Database
from cloud.payments.notify import NotifyError, signature, verify
from tests.cloud.payments.test_payments_api import (
    SECRET,
    _client,
    create,
    hub_config,
    notifications,
    notify,
)


@pytest.fixture
async def client(db: Database, tmp_path: Path) -> AsyncIterator[TestClient]:
    async with await _client(db, hub_config(tmp_path)) as c:
        yield c


@pytest.mark.parametrize("sig", ["sha256=" + "é" * 64, "签名", "sha256=\u0100", "\U0001f600"])
async def test_a_non_ascii_signature_is_401_and_recorded(
    client: TestClient, db: Database, sig: str
) -> None:
    _, body = await create(client)
    pid = body["payment"]["id"]
    status, reply = await notify(client, pid, 19.0, sig=sig)
    assert (status, reply["error"]["code"]) == (401, "bad_signature"), reply
    assert await notifications(db) == [(False, "bad_signature")]


async def _raw_post(client: TestClient, path: str, headers: bytes, body: bytes) -> int:
    """POST with header bytes as they are (aiohttp's client would encode them first)."""
    assert client.server.host is not None and client.server.port is not None
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(
            b"POST " + path.encode() + b" HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\n"
            + headers
            + b"Content-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        await writer.drain()
        status_line = await reader.readline()
        return int(status_line.split()[1])
    finally:
        writer.close()


@pytest.mark.parametrize(
    "headers",
    [
        b"X-Shopgate-Timestamp: \xff\xfe1735689600\r\nX-Shopgate-Signature: sha256=00\r\n",
        b"X-Shopgate-Timestamp: 1735689600\r\nX-Shopgate-Signature: sha256=\xff\xc3\r\n",
    ],
)
async def test_header_bytes_that_are_not_utf8_are_a_refusal(
    client: TestClient, db: Database, headers: bytes
) -> None:
    _, body = await create(client)
    pid = body["payment"]["id"]
    data = json.dumps({"payment": pid, "amount": 19.0, "status": "SUCCESS"}).encode()
    status = await _raw_post(client, f"/api/v1/payments/{pid}/notify", headers, data)
    assert status == 401
    assert await notifications(db) == [(False, "bad_signature")]


_any_text = st.text(st.characters(exclude_categories=()), max_size=80)


@settings(max_examples=300, deadline=None)
@given(timestamp=_any_text, sig=_any_text, body=st.binary(max_size=100))
def test_any_header_text_is_a_refusal_never_a_crash(timestamp: str, sig: str, body: bytes) -> None:
    with pytest.raises(NotifyError) as e:
        verify(SECRET, timestamp, sig, body, now=time.time(), skew=300)
    assert e.value.code in ("unsigned", "bad_signature")


@settings(max_examples=100, deadline=None)
@given(timestamp=_any_text.filter(lambda t: not t.strip().isdigit()), body=st.binary(max_size=50))
def test_a_signed_timestamp_that_is_no_time_is_400(timestamp: str, body: bytes) -> None:
    # Signed with the secret, so only the provider could have sent it: a bug on its side.
    if not timestamp:
        return
    stamp = timestamp.encode("utf-8", "surrogatepass").decode("utf-8", "surrogatepass")
    sig = signature(SECRET, stamp, body)
    with pytest.raises(NotifyError) as e:
        verify(SECRET, stamp, sig, body, now=time.time(), skew=300)
    assert e.value.code in ("bad_timestamp", "stale")
