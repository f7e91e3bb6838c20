"""One short line per request: `POST /api/v1/stores/S/events 200` with peer, bytes and
milliseconds as fields (aiohttp's default repeats every value as a field as well)."""

from __future__ import annotations

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse


class AccessLogger(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        # The path only: query strings are the caller's to choose, headers hold tokens.
        self.logger.info(
            "%s %s %d",
            request.method,
            request.path,
            response.status,
            extra={
                "peer": request.remote,
                "bytes": response.body_length,
                "ms": round(time * 1000, 1),
            },
        )
