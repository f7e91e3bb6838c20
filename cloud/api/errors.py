"""Every error the API answers is JSON: `{"error": {"code": "...", "message": "...", ...}}`.

The same shape as an agent's command replies (CONTRACTS section 3), so one client-side
reader serves both. aiohttp's own refusals (404, 405, 413) are rewritten to it as well.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from sqlalchemy.exc import DBAPIError

from cloud.db.errors import DatabaseError

log = logging.getLogger("cloud.api")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    503: "unavailable",
}


class ApiError(Exception):
    """An answer other than success; `details` are added to the error object."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = {k: v for k, v in details.items() if v is not None}


def error_response(error: ApiError) -> web.Response:
    body = {"error": {"code": error.code, "message": error.message, **error.details}}
    return web.json_response(body, status=error.status, headers=error.headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as e:
        return error_response(e)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        code = _CODES.get(e.status, "http_error")
        headers = {k: v for k, v in e.headers.items() if k.lower() in ("allow",)}
        return error_response(ApiError(e.status, code, e.reason, headers))
    except (DatabaseError, DBAPIError, ConnectionError) as e:
        # The database is down or unreachable (asyncpg reports a refused connection as a
        # bare ConnectionRefusedError): the caller should retry later.
        log.error("database unavailable: %s", e, extra={"path": request.path})
        message = "the hub's database is unavailable; retry later"
        return error_response(ApiError(503, "unavailable", message, {"Retry-After": "5"}))
    except Exception:
        log.exception("unexpected error", extra={"method": request.method, "path": request.path})
        return error_response(ApiError(500, "internal", "internal error; see the hub's log"))
