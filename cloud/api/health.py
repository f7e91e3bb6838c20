"""`GET /healthz`: is the hub up and does its database answer (for load balancers)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from cloud.api.appkeys import DB, VERSION
from cloud.api.auth import public

log = logging.getLogger("cloud.api.health")

DB_TIMEOUT_S = 2.0


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)


@public
async def healthz(request: web.Request) -> web.Response:
    db = request.app[DB]
    body: dict[str, object] = {"ok": True, "db": db.dialect, "version": request.app[VERSION]}
    try:
        async with asyncio.timeout(DB_TIMEOUT_S):
            await db.ping()
    except Exception as e:  # any failure means the same thing here: not healthy
        log.warning("health check: the database does not answer: %s", e)
        body["ok"] = False
        body["error"] = "the database does not answer"
        return web.json_response(body, status=503)
    return web.json_response(body)
