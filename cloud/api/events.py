"""`/api/v1/stores/{store}/events`: agents post their events, callers list them back
(CONTRACTS section 4).

A batch is taken whole or not at all. A refused batch is answered 400 (or 413) with the
first bad event's index and field, and recorded in the rejections table; nothing of it
is stored. Gzip-compressed bodies (`Content-Encoding: gzip`) are decompressed by aiohttp
as they arrive, and the size limit applies to the decompressed body.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from cloud.api.appkeys import DB, EVENTS
from cloud.api.auth import require
from cloud.api.errors import ApiError
from cloud.db.events import insert_new_events, list_events, record_rejection
from cloud.envelope import MAX_SEQ, BadBatch, Envelope, parse_batch

log = logging.getLogger("cloud.api.events")

PATH = "/api/v1/stores/{store}/events"
DEFAULT_LIMIT = 500
MAX_LIMIT = 5000
# Above this, parsing takes long enough (milliseconds) to move off the event loop.
_PARSE_IN_THREAD_BYTES = 64 * 1024


def add_routes(app: web.Application) -> None:
    app.router.add_post(PATH, post_events)
    app.router.add_get(PATH, get_events)


async def post_events(request: web.Request) -> web.Response:
    store_id = request.match_info["store"]
    require(request, store_id, write=True)
    db = request.app[DB]
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = request.client_max_size
        reason = f"the body is over {limit} bytes (after decompression); send smaller batches"
        await _reject(request, store_id, 413, reason, request.content_length or limit)
        raise ApiError(413, "too_large", reason, max_bytes=limit) from None
    try:
        batch = await _parse(body, store_id)
    except BadBatch as e:
        await _reject(request, store_id, 400, str(e), len(body))
        raise ApiError(
            400, e.code, str(e), index=e.index, field=e.field, event_id=e.event_id
        ) from None
    new_ids = await insert_new_events(db, store_id, batch)
    accepted = len(new_ids)
    duplicates = len(batch) - accepted
    events = request.app.get(EVENTS)
    if new_ids and events is not None:
        # Before the agent's answer: each stored batch's new events (never duplicates).
        await events.publish(store_id, _new_events(batch, new_ids))
    log.debug(
        "events stored",
        extra={"store": store_id, "accepted": accepted, "duplicates": duplicates},
    )
    return web.json_response({"accepted": accepted, "duplicates": duplicates})


async def get_events(request: web.Request) -> web.Response:
    store_id = request.match_info["store"]
    require(request, store_id, write=False)
    after_seq = _int_query(request, "after_seq", 0, minimum=0, maximum=MAX_SEQ)
    limit = _int_query(request, "limit", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
    envelopes = await list_events(request.app[DB], store_id, after_seq, limit)
    # The stored envelopes are JSON already: joined, not parsed and dumped again.
    response = web.Response(
        text='{"events":[' + ",".join(envelopes) + "]}", content_type="application/json"
    )
    response.enable_compression()
    return response


def _new_events(batch: list[Envelope], new_ids: list[str]) -> list[Envelope]:
    todo = set(new_ids)
    out = []
    for e in batch:
        if e.id in todo:
            todo.discard(e.id)  # an id repeated in the batch was stored once
            out.append(e)
    return out


async def _parse(body: bytes, store_id: str) -> list[Envelope]:
    if len(body) > _PARSE_IN_THREAD_BYTES:
        return await asyncio.to_thread(parse_batch, body, store_id)
    return parse_batch(body, store_id)


async def _reject(
    request: web.Request, store_id: str, status: int, reason: str, body_bytes: int
) -> None:
    log.warning(
        "batch refused",
        extra={"store": store_id, "status": status, "reason": reason, "bytes": body_bytes},
    )
    await record_rejection(request.app[DB], store_id, request.path, status, reason, body_bytes)


def _int_query(request: web.Request, name: str, default: int, *, minimum: int, maximum: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 19):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ApiError(400, "bad_query", f"{name} must be a whole number, got {shown!r}")
    value = int(text)
    if not minimum <= value <= maximum:
        message = f"{name} must be from {minimum} to {maximum}, got {value}"
        raise ApiError(400, "bad_query", message)
    return value
