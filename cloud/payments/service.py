"""Self-checkout payments: a store asks, the customer pays, the store is told once.

    payments = Payments(db, cfg.payments, bus_of=lambda: app.get(BUS))
    p = await payments.create(store, checkout=..., cart=..., amount_fen=..., items=[...])
    outcome = await payments.confirm(p.id, amount_fen=p.amount_fen, method="wechat", ref="...")

A payment is `pending` until paid, cancelled (by the store) or past `expires_at`. The
confirmation is one conditional UPDATE (pending and not expired -> paid), so two
notifications racing, or a provider retrying, mark it paid once; every later one gets
`already_paid` and changes nothing. Only the first sends the signed `checkout.paid`
{checkout, payment, cart, amount, method} to the store, retried in the background while
no reply comes (the store refuses a second one for the same payment, so a retry costs
nothing); the outcome is kept on the payment row (`delivery`) for the dashboard, and a
store's refusal (it gave up on that cart) is kept too: that payment needs a refund.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import math
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from cloud.bus import BusUnavailable, HubBus
from cloud.db.engine import Database
from cloud.db.tables import PAYMENT_TABLES
from cloud.db.times import now_text, utc_text
from cloud.payments.settings import PaymentsConfig

log = logging.getLogger("cloud.payments")

payments_table, notifications_table = PAYMENT_TABLES
COMMAND = "checkout.paid"
WAIT_REPLY_S = 5.0
RETRY_DELAYS_S = (1.0, 5.0, 20.0, 60.0)
RESUME_WITHIN_S = 3600.0  # older unacknowledged payments are left to the dashboard
COMMAND_TTL_S = 900  # outlives a short store outage; replays are refused by jti anyway
# Far above any cart (the hub refuses over payments.max_amount); beyond it fen lose precision.
MAX_YUAN = 10**12
# Replies by which the store says it holds that sale already: delivered.
DONE_CODES = frozenset({"already_paid"})


@dataclass(frozen=True, slots=True)
class Payment:
    id: str
    store: str
    checkout: str
    cart: str
    amount_fen: int
    items: list[dict[str, Any]]
    status: str  # pending | paid | cancelled | expired (pending past expires_at)
    created_at: str
    expires_at: str
    paid_at: str | None
    method: str | None
    delivery: str | None

    @property
    def amount(self) -> float:
        return round(self.amount_fen / 100, 2)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "store": self.store,
            "checkout": self.checkout,
            "cart": self.cart,
            "amount": self.amount,
            "items": self.items,
            "status": self.status,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "paid_at": self.paid_at,
            "method": self.method,
            "delivery": self.delivery,
        }


class PaymentRefused(Exception):
    """Confirming or cancelling is not possible; `code` says why (API and notify reply)."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def to_fen(amount: Any) -> int:
    """Yuan as the API carries it (3.5) -> fen (350); ValueError when not a money amount."""
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        raise ValueError("amount must be a number of yuan")
    if not math.isfinite(amount) or abs(amount) > MAX_YUAN:  # round() of those overflows
        raise ValueError(f"amount {amount!r} is not a positive number of yuan with 2 decimals")
    fen = round(amount * 100)
    if abs(fen - amount * 100) > 1e-6 or fen <= 0:
        raise ValueError(f"amount {amount!r} is not a positive number of yuan with 2 decimals")
    return int(fen)


class Payments:
    def __init__(
        self,
        db: Database,
        cfg: PaymentsConfig,
        *,
        bus_of: Callable[[], HubBus | None],
        wait_reply_s: float = WAIT_REPLY_S,
        retry_delays_s: Sequence[float] = RETRY_DELAYS_S,
    ) -> None:
        self.db = db
        self.cfg = cfg
        self._bus_of = bus_of
        self._wait = wait_reply_s
        self._delays = tuple(retry_delays_s)
        self._tasks: set[asyncio.Task[None]] = set()

    async def create(
        self,
        store: str,
        *,
        checkout: str,
        cart: str,
        amount_fen: int,
        items: list[dict[str, Any]],
        ttl_s: int | None = None,
    ) -> Payment:
        now = dt.datetime.now(dt.UTC)
        ttl = min(ttl_s or self.cfg.default_ttl_seconds, self.cfg.max_ttl_seconds)
        row = {
            "id": "pay_" + secrets.token_urlsafe(18),
            "store_id": store,
            "checkout": checkout,
            "cart": cart,
            "amount_fen": amount_fen,
            "items": json.dumps(items, ensure_ascii=False, separators=(",", ":")),
            "status": "pending",
            "created_at": utc_text(now),
            "expires_at": utc_text(now + dt.timedelta(seconds=ttl)),
        }
        async with self.db.write() as conn:
            await conn.execute(payments_table.insert().values(**row))
        log.info(
            "payment created",
            extra={"store": store, "payment": row["id"], "amount_fen": amount_fen},
        )
        found = await self.get(str(row["id"]))
        assert found is not None
        return found

    async def get(self, payment_id: str) -> Payment | None:
        async with self.db.read() as conn:
            row = (
                await conn.execute(select(payments_table).where(payments_table.c.id == payment_id))
            ).first()
        return None if row is None else _payment(row._mapping)

    async def confirm(
        self, payment_id: str, *, amount_fen: int, method: str, ref: str | None
    ) -> tuple[Payment, bool]:
        """Mark the payment paid: (payment, True) the first time, (payment, False) when it
        was paid already with the same amount. PaymentRefused otherwise."""
        current = await self.get(payment_id)
        if current is None:
            raise PaymentRefused("unknown_payment", f"no payment {payment_id!r}", 404)
        if amount_fen != current.amount_fen:
            raise PaymentRefused(
                "amount_mismatch",
                f"paid {amount_fen / 100:.2f}, but the payment is for {current.amount:.2f}",
                400,
            )
        now = now_text()
        async with self.db.write() as conn:
            result = await conn.execute(
                update(payments_table)
                .where(
                    payments_table.c.id == payment_id,
                    payments_table.c.status == "pending",
                    payments_table.c.expires_at > now,
                )
                .values(
                    status="paid", paid_at=now, method=method, provider_ref=ref, delivery="sending"
                )
            )
            won = result.rowcount == 1
        paid = await self.get(payment_id)
        assert paid is not None
        if won:
            log.info("payment paid", extra={"store": paid.store, "payment": paid.id})
            self._spawn(self._tell_store(paid))
            return paid, True
        if paid.status == "paid":
            return paid, False
        if paid.status == "cancelled":
            raise PaymentRefused("cancelled", "the checkout cancelled this payment", 409)
        raise PaymentRefused("expired", f"the payment expired at {paid.expires_at}", 409)

    async def cancel(self, payment_id: str, store: str) -> Payment:
        """The store gave up on the cart: a pending payment can no longer be paid."""
        async with self.db.write() as conn:
            await conn.execute(
                update(payments_table)
                .where(
                    payments_table.c.id == payment_id,
                    payments_table.c.store_id == store,
                    payments_table.c.status == "pending",
                )
                .values(status="cancelled")
            )
        found = await self.get(payment_id)
        if found is None or found.store != store:
            raise PaymentRefused("unknown_payment", f"no payment {payment_id!r}", 404)
        if found.status == "paid":
            raise PaymentRefused("already_paid", "the customer has paid already", 409)
        return found

    async def record_notification(
        self, payment_id: str, *, ok: bool, outcome: str, peer: str, body: bytes
    ) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                notifications_table.insert().values(
                    payment_id=payment_id[:128],
                    at=now_text(),
                    ok=ok,
                    outcome=outcome,
                    peer=(peer or "")[:64],
                    body=body[:4096].decode("utf-8", "replace"),
                )
            )

    async def resume(self, within_s: float = RESUME_WITHIN_S) -> int:
        """Tell stores again about payments paid in the last `within_s` whose
        `checkout.paid` was never acknowledged (the hub stopped meanwhile). Returns how
        many; a store that has the sale already answers `already_paid`."""
        since = utc_text(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=within_s))
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(payments_table).where(
                        payments_table.c.status == "paid",
                        payments_table.c.paid_at > since,
                        payments_table.c.delivery.in_(("sending", "no_reply", "unsent")),
                    )
                )
            ).all()
        for row in rows:
            self._spawn(self._tell_store(_payment(row._mapping)))
        return len(rows)

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _tell_store(self, p: Payment) -> None:
        args = {
            "checkout": p.checkout,
            "payment": p.id,
            "cart": p.cart,
            "amount": p.amount,
            "method": p.method,
        }
        outcome: str = "unsent"
        error: str | None = "the hub has no command bus"
        for attempt in range(len(self._delays) + 1):
            if attempt:
                await asyncio.sleep(self._delays[attempt - 1])
            bus = self._bus_of()
            if bus is None:
                break
            try:
                reply = await bus.send_command(
                    p.store, COMMAND, args, ttl=COMMAND_TTL_S, wait_reply=self._wait
                )
            except BusUnavailable as e:
                outcome, error = "unsent", str(e)
                continue
            if reply is None:
                outcome, error = "no_reply", None
                continue
            error_field = reply.get("error")
            err: dict[str, Any] = error_field if isinstance(error_field, dict) else {}
            if reply.get("ok") is True or err.get("code") in DONE_CODES:
                outcome, error = "acked", None
            else:
                outcome = "refused"
                error = f"{err.get('code', '?')}: {err.get('message', '')}"[:2000]
                log.error(
                    "the store refused a paid payment: it needs a refund",
                    extra={"store": p.store, "payment": p.id, "error": error},
                )
            break
        async with self.db.write() as conn:
            await conn.execute(
                update(payments_table)
                .where(payments_table.c.id == p.id)
                .values(
                    delivery=outcome,
                    delivery_error=error,
                    delivered_at=now_text() if outcome == "acked" else None,
                )
            )


def _payment(row: Any) -> Payment:
    status = row["status"]
    if status == "pending" and row["expires_at"] <= now_text():
        status = "expired"
    return Payment(
        id=row["id"],
        store=row["store_id"],
        checkout=row["checkout"],
        cart=row["cart"],
        amount_fen=int(row["amount_fen"]),
        items=json.loads(row["items"]),
        status=status,
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        paid_at=row["paid_at"],
        method=row["method"],
        delivery=row["delivery"],
    )
