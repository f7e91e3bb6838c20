"""Order catch-up over HTTP: the hub's open orders into the store's PendingOrders.

The hub pushes every order change as a command over MQTT, but a store that was offline
(or whose broker session was lost) may have missed some. OrderSync asks the hub:

    sync = OrderSync(lambda: agent.orders(), hub_url=..., store_id=..., token=...)
    await sync.start()      # a first sync at once, then every interval_s
    sync.sync_now()         # after an MQTT reconnect: sync soon, skipping any backoff
    await sync.sync_once()  # one pass now (tests, the `sync` command); raises on failure
    await sync.stop()

One pass: `GET {hub}/api/v1/stores/S/orders?status=pending` and
`?status=cancelled&updated_after=T` (T: the hub's own clock at the previous pass, less a
margin; the first pass looks back CANCELLED_LOOKBACK_S). Pending orders that are new or
changed are upserted; cancelled ones that are still pending here are cancelled. What
this store decided wins: an order it already saw picked up (or cancelled) is never made
pending again by a sync. Failures (the hub unreachable, a refusal) are logged once per
streak and retried after a capped exponential backoff with jitter; being offline is
normal for a store and costs nothing.

Only signed answers are taken (agent/rules/signed_sync.py): each request asks for
`Accept: application/jwt` with a fresh random `nonce`, and the answer must be signed by
a hub key this store trusts, for this store, unexpired, echo the nonce and the question,
and be no older than the newest answer taken (`order_sync.high_water` in the journal's
settings, so it holds across restarts). Both answers of a pass are verified before
either is applied: a refused pass changes nothing. A refusal is journaled as
`sync.refused` {what, reason, detail} and logged, then retried like any failure.
The verifier hands each answer's signing time to the agent's clock (a fresh hub-signed
time, as the nonce proves: agent/clock.py, observe_signed_time).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from agent.hub_client import HubClient
from agent.journal import Journal, JournalError, PutSetting
from agent.rules.passes import PassVerifier, Rejected
from agent.rules.signed_sync import SyncAnswer, looks_signed, next_high_water, verify_sync
from agent.services.orders import OrderError, PendingOrders
from runtime.backoff import Backoff

log = logging.getLogger(__name__)

INTERVAL_S = 60.0
RETRY_MIN_S = 1.0
RETRY_MAX_S = 300.0
REQUEST_TIMEOUT_S = 15.0
CANCELLED_LOOKBACK_S = 2 * 86400.0
CURSOR_MARGIN_S = 300.0  # overlap between passes: a change stamped late is still seen
FINAL = frozenset({"picked_up", "cancelled"})
JWT = "application/jwt"
MAX_ANSWER_BYTES = 32 * 1024 * 1024  # thousands of orders; a hostile answer stops here
HIGH_WATER = "order_sync.high_water"


class SyncFailed(Exception):
    """The hub could not be asked (the message says why; never holds the token)."""


class SyncRefused(SyncFailed):
    """An answer this store does not take (unsigned, forged, another store's, expired, to
    another request); nothing of it was applied. `reason` is a contract reason code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class SyncResult:
    upserted: list[str]
    cancelled: list[str]
    kept: list[str]  # orders the hub has as pending that this store already closed
    hub_iat: float | None = None  # when the hub signed the newest answer of the pass


def _rfc3339(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat().replace("+00:00", "Z")


def _parse_time(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _same(hub: Mapping[str, Any], local: Mapping[str, Any]) -> bool:
    return all(local.get(k) == v for k, v in hub.items())


class OrderSync:
    def __init__(
        self,
        orders: PendingOrders | Callable[[], PendingOrders],
        *,
        hub_url: str = "",
        store_id: str = "",
        token: str = "",
        hub: HubClient | None = None,
        verifier: PassVerifier,
        journal: Journal | None = None,
        interval_s: float = INTERVAL_S,
        retry_min_s: float = RETRY_MIN_S,
        retry_max_s: float = RETRY_MAX_S,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        now: Callable[[], float] = time.time,
    ) -> None:
        # A callable, because the agent builds a new PendingOrders on each config reload.
        self._orders = orders if callable(orders) else (lambda: orders)
        # The agent's shared client (agent/hub_client.py), or one of its own (tools, tests).
        self._owns_hub = hub is None
        self._hub = hub or HubClient(hub_url, store_id, token)
        self._url = self._hub.store_url("orders")
        self._store = self._hub.store_id
        self._verifier = verifier  # the agent's own: keys rotated by keys.set apply here too
        self._journal = journal
        self.high_water: float | None = None  # iat of the newest answer taken (capped)
        self._interval = interval_s
        self._retry = (retry_min_s, retry_max_s)
        self._timeout = aiohttp.ClientTimeout(total=request_timeout_s)
        self._now = now
        self._cursor: str | None = None  # the hub's `now` at the last good pass, less margin
        self._started = False
        self._task: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()
        self._lock = asyncio.Lock()
        self.passes = 0
        self.failures = 0  # in the current streak
        self.last_error: str | None = None
        self.last_success: float | None = None
        self._warned = False

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        if self._journal is not None:
            mark = (await self._journal.load_state()).settings.get(HIGH_WATER)
            self.high_water = float(mark) if isinstance(mark, int | float) else None
        self._started = True
        self._task = asyncio.get_running_loop().create_task(self._run(), name="order-sync")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._started = False
        if self._owns_hub:
            await self._hub.close()

    def sync_now(self) -> None:
        """Sync soon, even during a backoff (an MQTT reconnect, the `sync` command)."""
        self._kick.set()

    def stats(self) -> dict[str, Any]:
        return {
            "passes": self.passes,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_success": _rfc3339(self.last_success) if self.last_success else None,
        }

    # --- the loop ----------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._kick.clear()
            try:
                await self.sync_once()
                wait = self._interval
            except SyncFailed as e:
                wait = self._backoff()
                # Offline is normal for a store: one warning per streak of failures.
                level = logging.DEBUG if self._warned else logging.WARNING
                self._warned = True
                log.log(level, "order sync: %s; retrying in %.2f s", e, wait)
            except Exception:
                wait = self._backoff()
                log.exception("order sync failed; retrying in %.2f s", wait)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._kick.wait()

    def _backoff(self) -> float:
        lo, hi = self._retry
        return Backoff(lo, hi).delay(self.failures - 1)

    # --- one pass ----------------------------------------------------------------------

    async def sync_once(self) -> SyncResult:
        """Fetch the hub's open and recently cancelled orders and apply them here."""
        async with self._lock:
            try:
                result = await self._pass()
            except SyncRefused as e:
                self.failures += 1
                self.last_error = str(e)
                await self._refused(e)
                raise
            except SyncFailed as e:
                self.failures += 1
                self.last_error = str(e)
                raise
            if self.failures:
                log.info("order sync: the hub answers again after %d failures", self.failures)
            self.failures = 0
            self._warned = False
            self.last_error = None
            self.last_success = self._now()
            self.passes += 1
            return result

    async def _refused(self, e: SyncRefused) -> None:
        log.warning("order sync refused the hub's answer, nothing applied: %s", e)
        if self._journal is None:
            return
        data = {"what": "orders", "reason": e.reason, "detail": e.detail[:300]}
        try:
            await self._journal.append("sync.refused", data)
        except JournalError as je:
            log.error("could not journal the refused order sync: %s", je)

    async def _pass(self) -> SyncResult:
        since = self._cursor or _rfc3339(self._now() - CANCELLED_LOOKBACK_S)
        # Both answers are verified before either is applied: a refusal changes nothing.
        first = await self._get({"status": "pending"})
        second = await self._get({"status": "cancelled", "updated_after": since})
        pending, hub_now, cancelled = first.orders, first.now, second.orders
        orders = self._orders()
        upsert: list[dict[str, Any]] = []
        kept: list[str] = []
        for o in pending:
            oid = o.get("id") if isinstance(o, dict) else None
            if not isinstance(oid, str) or not oid:
                log.warning("order sync: the hub listed an order without an id; skipped")
                continue
            local = orders.by_id.get(oid)
            if local is not None and local.get("status") in FINAL:
                kept.append(oid)  # this store's own decision stands
            elif local is None or not _same(o, local):
                upsert.append(o)
        upserted = await self._upsert(orders, upsert)
        ids = [o["id"] for o in cancelled if isinstance(o, dict) and isinstance(o.get("id"), str)]
        gone = await orders.cancel(ids) if ids else []
        at = _parse_time(hub_now)
        self._cursor = _rfc3339((at if at is not None else self._now()) - CURSOR_MARGIN_S)
        if upserted or gone:
            log.info(
                "order sync: %d orders added or changed, %d cancelled", len(upserted), len(gone)
            )
        iat = max(first.iat, second.iat)
        await self._taken(iat)
        return SyncResult(upserted, gone, kept, iat)

    async def _taken(self, iat: float) -> None:
        mark = next_high_water(self.high_water, iat, self._now(), self._verifier.skew)
        if mark != self.high_water and self._journal is not None:
            try:
                await self._journal.apply([PutSetting(HIGH_WATER, mark)])
            except JournalError as e:
                log.error("order sync: could not save the high-water mark: %s", e)
        self.high_water = mark

    async def _upsert(self, orders: PendingOrders, todo: list[dict[str, Any]]) -> list[str]:
        if not todo:
            return []
        try:
            return await orders.upsert(todo)
        except OrderError:
            pass  # one bad order must not keep the others out: one at a time
        done: list[str] = []
        for o in todo:
            try:
                done += await orders.upsert([o])
            except OrderError as e:
                log.warning("order sync: order refused: %s", e)
        return done

    async def _get(self, params: dict[str, str]) -> SyncAnswer:
        if not self._started:
            raise SyncFailed("not started")
        session = self._hub.session()
        nonce = secrets.token_urlsafe(24)
        try:
            async with session.get(
                self._url,
                params={**params, "nonce": nonce},
                headers={"Accept": JWT},
                timeout=self._timeout,
            ) as resp:
                if resp.status != 200:
                    text = (await resp.text())[:300]
                    raise SyncFailed(f"the hub answered {resp.status}: {text}")
                kind = resp.content_type
                body = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        break
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            raise SyncFailed(f"cannot reach the hub: {type(e).__name__}: {e}") from None
        if len(body) > MAX_ANSWER_BYTES:
            raise SyncRefused("malformed", f"the answer is over {MAX_ANSWER_BYTES} bytes")
        token = body.decode("ascii", errors="replace").strip()
        if not looks_signed(token):
            raise SyncRefused(
                "malformed",
                f"the answer is not signed ({kind or 'no content type'}); this agent takes "
                "only order lists signed by the hub (a hub older than the agent, or not the hub)",
            )
        checked = verify_sync(
            self._verifier,
            token,
            store=self._store,
            now=self._now(),
            nonce=nonce,
            status=[params["status"]],
            updated_after=params.get("updated_after"),
            high_water=self.high_water,
        )
        if isinstance(checked, Rejected):
            raise SyncRefused(str(checked.reason), checked.detail)
        return checked
