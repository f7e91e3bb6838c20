"""Store-and-forward: the journal's undelivered events go to the hub, at least once.

The journal is the outbox and the relay keeps nothing that is not in it: after a power
cut or a week offline it simply starts again from the journal's undelivered events.

    relay = Relay(journal, hub_url=cfg.hub.url, store_id=cfg.store.id, token=cfg.hub.token)
    await relay.start()
    relay.sync_now()            # the `sync` remote command: send now, skip the backoff
    relay.stats()               # outbox depth, oldest undelivered age, last error...
    await relay.stop()

Sending: events go in seq order, `batch_size` per `POST {hub}/api/v1/stores/S/events`
(gzip-compressed JSON `{"events": [...]}`, bearer token, one kept-alive connection).
They are marked delivered, by seq, only after the hub's 2xx; the hub stores each id once,
so a batch sent twice (a crash between the hub's answer and the mark) costs nothing. While
a backlog exists the next batch is read and encoded while the current one is in flight,
and its predecessor is marked while the next one is in flight. With nothing to send the
relay sleeps until the journal commits new events (a listener, not polling), `sync_now`,
or a slow periodic tick.

`stats()` is synchronous (the MQTT `state` is built synchronously): it answers from a
snapshot of the journal's outbox that is refreshed after each batch and after new
events, at most every STATS_REFRESH_S, so `undelivered` lags by at most about that;
the oldest event's age is computed at each call. `await refresh_stats()` reads now.

What the hub answers decides what happens to a batch:
- 2xx: delivered.
- no answer (refused, reset, timeout), 5xx, 408, 429: the hub is unavailable. Retry the
  same batch after a capped exponential backoff with jitter (RETRY_MIN_S .. RETRY_MAX_S),
  or after Retry-After when the hub gives one.
- 401, 403, 404, 405, 415 and other 4xx not listed below: about the token, the URL or the
  protocol, not about these events. Same as unavailable (retry with backoff, the error
  shown in `stats()`): marking every event rejected because a token was rotated would
  put the whole outbox aside.
- 413: the request was too large; the batch is split in halves and each half sent (one
  event too large on its own is rejected, as below).
- 400, 409, 422 (REJECTING): the hub refuses what the batch holds (the hub takes a batch
  whole or not at all). Poison isolation: the batch is split and each part sent on its
  own, recursively. When the hub's answer names the first bad event
  (`{"error": {"index": i}}`, as cloud/ answers) the parts are [..i), [i], (i..];
  otherwise halves (bisection: one bad event in n costs about 2·log2(n) requests).
  An event is marked rejected only when the hub refused it ALONE: with the hub's status
  and answer, kept in the journal for inspection, never resent automatically, never
  pruned by the size cap (`Journal.requeue_rejected()` sends it again). Every good event
  of the batch is still delivered, in seq order.

The token is never logged, and is cut out of any hub answer before that is logged or kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import gzip
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from agent.clock import format_rfc3339
from agent.hub_client import HubClient
from agent.journal import Event, Journal, JournalError
from agent.journal.state import OutboxSummary
from runtime.backoff import Backoff

_BATCH_HEADERS = {"Content-Type": "application/json", "Content-Encoding": "gzip"}

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 2000  # see bench/relay.py: larger batches gain little past this
RETRY_MIN_S = 0.5
RETRY_MAX_S = 60.0
RETRY_AFTER_MAX_S = 600.0  # a Retry-After further out than this is taken as this
TICK_S = 30.0  # look at the journal this often even without a notification
STATS_REFRESH_S = 1.0  # the outbox counts behind stats() are at most about this old
STOP_GRACE_S = 2.0  # how long stop() lets the in-flight batch finish
REQUEST_TIMEOUT_S = 30.0
GZIP_LEVEL = 1  # event JSON compresses ~8x at level 1; higher levels cost CPU for ~10%
REASON_MAX_CHARS = 2000

REJECTING = frozenset({400, 409, 422})
TOO_LARGE = 413


class _Unavailable(Exception):
    """The batch could not be delivered now; try again later (the message says why)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(slots=True)
class _Batch:
    after: int  # the batch is the first pending events with seq > after
    seqs: list[int]
    body: bytes  # gzip-compressed JSON


class Relay:
    def __init__(
        self,
        journal: Journal,
        *,
        hub_url: str = "",
        store_id: str = "",
        token: str = "",
        hub: HubClient | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        now: Callable[[], float] = time.time,
        retry_min_s: float = RETRY_MIN_S,
        retry_max_s: float = RETRY_MAX_S,
        tick_s: float = TICK_S,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        stop_grace_s: float = STOP_GRACE_S,
        stats_refresh_s: float = STATS_REFRESH_S,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self._journal = journal
        # The agent's shared client (agent/hub_client.py), or one of its own (tools, tests).
        self._owns_hub = hub is None
        self._hub = hub or HubClient(hub_url, store_id, token)
        self._url = self._hub.store_url("events")
        self._batch_size = batch_size
        self._now = now
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        self._tick_s = tick_s
        self._timeout = aiohttp.ClientTimeout(total=request_timeout_s)
        self._stop_grace_s = stop_grace_s
        self._stats_refresh_s = stats_refresh_s
        self._task: asyncio.Task[None] | None = None
        self._stats_task: asyncio.Task[None] | None = None
        self._outbox = OutboxSummary(0, None, 0)  # the snapshot behind stats()
        self._outbox_dirty = asyncio.Event()
        self._wake = asyncio.Event()  # new events, sync_now, stop
        self._kick = asyncio.Event()  # sync_now, stop: these also cut a backoff short
        self._stopping = False
        # For stats() only: what this process has seen (the journal holds the rest).
        self._last_success: float | None = None
        self._last_error: str | None = None
        self._failures = 0
        self._delivered = 0
        self._rejected_now = 0
        self._last_rejection: str | None = None
        self._requests = 0

    @property
    def url(self) -> str:
        return self._url

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None:
            return
        await self.refresh_stats()
        self._journal.add_events_listener(self._on_events)
        self._wake.set()  # whatever the journal already holds goes first
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="relay")
        self._stats_task = loop.create_task(self._watch_outbox(), name="relay-stats")
        log.info("relay to %s started: %d events to deliver", self._url, self._outbox.pending)

    async def stop(self) -> None:
        """Let the in-flight batch finish (STOP_GRACE_S), else abandon it, then close.

        An abandoned batch stays undelivered in the journal and is sent again after the
        next start; the hub's dedupe by id makes that harmless.
        """
        if self._task is None:
            return
        self._stopping = True
        self._journal.remove_events_listener(self._on_events)
        self._wake.set()
        self._kick.set()
        task, self._task = self._task, None
        done, _ = await asyncio.wait([task], timeout=self._stop_grace_s)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._stats_task is not None:
            self._stats_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stats_task
            self._stats_task = None
        if self._owns_hub:
            await self._hub.close()

    def sync_now(self) -> None:
        """Send what is pending now, cutting any backoff short."""
        self._wake.set()
        self._kick.set()

    def stats(self) -> dict[str, Any]:
        """For the MQTT `state` and `sync`: outbox depth, oldest undelivered event, health.

        `undelivered` and `rejected` are from the latest snapshot (see the module doc)."""
        summary = self._outbox
        oldest = summary.oldest_pending_ts
        age = None if oldest is None else max(0.0, self._now() - _epoch(oldest))
        last_ok = self._last_success
        return {
            "undelivered": summary.pending,
            "oldest_undelivered_ts": oldest,
            "oldest_age_s": None if age is None else round(age, 1),
            "rejected": summary.rejected,
            "rejected_since_start": self._rejected_now,
            "last_rejection": self._last_rejection,
            "delivered_since_start": self._delivered,
            "requests_since_start": self._requests,
            "last_success_ts": None if last_ok is None else format_rfc3339(last_ok),
            "last_error": self._last_error,
            "consecutive_failures": self._failures,
        }

    async def refresh_stats(self) -> dict[str, Any]:
        """stats(), with the outbox counts read from the journal now."""
        self._outbox = await self._journal.outbox_summary()
        return self.stats()

    def _on_events(self) -> None:
        self._wake.set()
        self._outbox_dirty.set()

    async def _watch_outbox(self) -> None:
        """Keep the stats() snapshot fresh: after changes, at most every STATS_REFRESH_S."""
        while True:
            await self._outbox_dirty.wait()
            self._outbox_dirty.clear()
            try:
                await self.refresh_stats()
            except JournalError as exc:
                log.warning("relay: could not read the outbox for stats: %s", exc)
            await asyncio.sleep(self._stats_refresh_s)

    # --- the sender -----------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self._drain()
            except _Unavailable as exc:
                self._failed(str(exc))
                self._kick.clear()
                await _wait(self._kick, self._delay(exc.retry_after))
                continue
            except JournalError as exc:
                # The disk, not the hub: keep trying, the events are still in the journal.
                self._failed(f"journal: {exc}")
                self._kick.clear()
                await _wait(self._kick, self._delay(None))
                continue
            except Exception as exc:  # a bug here must not end delivery for good
                log.exception("relay: unexpected failure")
                self._failed(f"internal: {exc!r}")
                self._kick.clear()
                await _wait(self._kick, self._delay(None))
                continue
            await _wait(self._wake, self._tick_s)

    async def _drain(self) -> None:
        """Send everything pending, in seq order, until none is left or we stop."""
        marking: asyncio.Task[None] | None = None
        ahead = asyncio.ensure_future(self._read_batch(after=0))
        try:
            while not self._stopping:
                batch = await ahead
                if not batch.seqs:
                    return
                ahead = asyncio.ensure_future(self._read_batch(after=batch.seqs[-1]))
                status, text, retry_after = await self._post(batch.body)
                if 200 <= status < 300:
                    if marking is not None:
                        await marking
                    marking = asyncio.ensure_future(self._delivered_ok(batch.seqs, text))
                elif status in REJECTING or status == TOO_LARGE:
                    if marking is not None:
                        await marking
                        marking = None
                    # Rare: now the events themselves are needed (ids, types for the log).
                    wanted = set(batch.seqs)
                    events = await self._journal.undelivered_after(batch.after, len(wanted))
                    await self._split([e for e in events if e.seq in wanted], status, text)
                else:
                    raise _unavailable(status, text, retry_after)
        finally:
            if not ahead.done():
                ahead.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await ahead
            if marking is not None:
                await marking

    async def _split(self, events: list[Event], status: int, text: str) -> None:
        """Deliver what the hub accepts of a refused batch; mark what it refuses alone."""
        if len(events) == 1:
            await self._reject(events[0], status, text)
            return
        bad = _bad_index(text, len(events)) if status in REJECTING else None
        if bad is not None:
            # The hub named the first bad event: before it, it alone, after it.
            parts = [events[:bad], events[bad : bad + 1], events[bad + 1 :]]
        else:
            mid = len(events) // 2
            parts = [events[:mid], events[mid:]]
        for part in parts:
            if not part:
                continue
            body = await asyncio.to_thread(_encode, part)
            status, text, retry_after = await self._post(body)
            if 200 <= status < 300:
                await self._delivered_ok([e.seq for e in part], text)
            elif status in REJECTING or status == TOO_LARGE:
                await self._split(part, status, text)
            else:
                raise _unavailable(status, text, retry_after)

    async def _read_batch(self, after: int) -> _Batch:
        batch = await self._journal.outbox_batch(after, self._batch_size)
        if not batch.seqs:
            return _Batch(after, [], b"")
        body = await asyncio.to_thread(_compress, batch.body)
        return _Batch(after, batch.seqs, body)

    async def _post(self, body: bytes) -> tuple[int, str, float | None]:
        """(status, answer text, Retry-After seconds); no answer at all is _Unavailable."""
        self._requests += 1
        try:
            async with self._hub.session().post(
                self._url, data=body, headers=_BATCH_HEADERS, timeout=self._timeout
            ) as resp:
                text = await resp.text(errors="replace")
                return resp.status, text, _retry_after(resp.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _Unavailable(f"hub unreachable: {_describe(exc)}") from exc

    async def _delivered_ok(self, seqs: list[int], text: str) -> None:
        await self._journal.mark_delivered(seqs)
        self._outbox_dirty.set()
        self._delivered += len(seqs)
        self._last_success = self._now()
        if self._failures:
            log.info("relay: hub reachable again after %d failed attempts", self._failures)
        self._failures = 0
        self._last_error = None
        counted = _counted(text)
        if counted is not None and counted != len(seqs):
            log.warning("hub acknowledged %s of %d events sent", counted, len(seqs))

    async def _reject(self, event: Event, status: int, text: str) -> None:
        reason = self._redact(text)[:REASON_MAX_CHARS]
        await self._journal.mark_rejected([event.seq], status, reason)
        self._outbox_dirty.set()
        self._rejected_now += 1
        self._last_rejection = f"seq {event.seq} ({event.type}): HTTP {status} {reason[:200]}"
        log.error(
            "hub rejected event seq %d id %s type %s: HTTP %d %s; kept in the journal, not resent",
            event.seq,
            event.id,
            event.type,
            status,
            reason[:300],
        )

    def _failed(self, message: str) -> None:
        message = self._redact(message)
        self._failures += 1
        if self._failures == 1 or message != self._last_error:
            log.warning("relay: %s (will retry)", message)
        self._last_error = message

    def _delay(self, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), RETRY_AFTER_MAX_S)
        # Jittered: a fleet of stores spreads out without any of them hammering a hub
        # that is coming back.
        return Backoff(self._retry_min_s, self._retry_max_s).delay(self._failures - 1)

    def _redact(self, text: str) -> str:
        return self._hub.redact(text)


def _encode(events: Sequence[Event]) -> bytes:
    return _compress(json.dumps({"events": [e.to_dict() for e in events]}, separators=(",", ":")))


def _compress(body: str) -> bytes:
    return gzip.compress(body.encode(), compresslevel=GZIP_LEVEL, mtime=0)


def _unavailable(status: int, text: str, retry_after: float | None) -> _Unavailable:
    if status in (401, 403):
        what = "hub refused the store token"
    elif 500 <= status or status in (408, 429):
        what = "hub unavailable"
    else:
        what = "hub refused the request (check hub.url and the store id)"
    return _Unavailable(f"{what}: HTTP {status} {text[:200]}".rstrip(), retry_after)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _bad_index(text: str, size: int) -> int | None:
    """The hub's 400 names the first bad event: {"error": {"index": i, ...}}."""
    try:
        index = json.loads(text)["error"]["index"]
    except (ValueError, TypeError, KeyError):
        return None
    return index if isinstance(index, int) and 0 <= index < size else None


def _counted(text: str) -> int | None:
    try:
        answer = json.loads(text)
        return int(answer["accepted"]) + int(answer["duplicates"])
    except (ValueError, TypeError, KeyError):
        return None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
