"""The checkout's calls to the hub's payment API (cloud/api/payments.py), with the
store token, as the relay calls the hub: `hub.url`, `Authorization: Bearer hub.token`.

Every failure is one exception, HubPaymentError, whose `unavailable` says whether the
hub could not be reached (no connection, timeout, 5xx: the customer is told the network
is down) or refused the request (4xx: a bug or a config problem, logged with the hub's
reason). The token is never logged.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import aiohttp

from agent.hub_client import HubClient

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 5.0


class HubPaymentError(Exception):
    def __init__(self, message: str, *, unavailable: bool, code: str = "") -> None:
        super().__init__(message)
        self.unavailable = unavailable
        self.code = code


class HubPayments:
    def __init__(self, hub: HubClient, *, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self._hub = hub  # the agent's one client for its hub: the app closes it
        self._base = hub.store_url("payments")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def close(self) -> None:
        """Nothing of its own to close: the session is the agent's."""

    async def create(
        self, *, checkout: str, cart: str, amount: float, items: list[dict[str, Any]], ttl_s: int
    ) -> tuple[dict[str, Any], str]:
        """(payment, qr_url) for a new payment of `amount` yuan."""
        body = {
            "checkout": checkout,
            "cart": cart,
            "amount": amount,
            "items": items,
            "ttl_seconds": ttl_s,
        }
        reply = await self._post(self._base, body)
        return reply["payment"], reply["qr_url"]

    async def cancel(self, payment: str) -> dict[str, Any]:
        reply = await self._post(f"{self._base}/{quote(payment, safe='')}/cancel", {})
        return reply["payment"]

    async def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            async with self._hub.session().post(url, json=body, timeout=self._timeout) as resp:
                try:
                    reply = await resp.json(content_type=None)
                except ValueError:
                    reply = None
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise HubPaymentError(
                f"hub unreachable: {type(e).__name__}: {e}", unavailable=True
            ) from e
        if 200 <= status < 300 and isinstance(reply, dict):
            return reply
        error = reply.get("error", {}) if isinstance(reply, dict) else {}
        code = str(error.get("code", "")) if isinstance(error, dict) else ""
        message = str(error.get("message", "")) if isinstance(error, dict) else ""
        raise HubPaymentError(
            f"hub answered {status}: {code} {message}".strip(),
            unavailable=status >= 500 or status in (401, 403, 404, 408, 429),
            code=code,
        )
