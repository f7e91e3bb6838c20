"""What the agent takes from the hub over HTTP: a hub-signed answer to the question it
asked, fresh. Pure: the caller gives the token, the question and the time.

The hub signs an order-sync answer as it signs a command (cloud/signing.py
`sign_store_data`): EdDSA with a key the store trusts, `iss` shopgate-hub, `aud` this
store, `scope` `orders.sync`, `iat`, `exp`, and the claim `sync` = {"orders", "now",
"status", "updated_after", "nonce"}. On top of the signature, key, issuer, expiry and
store (the PassVerifier's checks, as for passes and commands), an answer is taken only if

- `scope` is `orders.sync`: a pass or a command is never an order list, nor the reverse;
- it answers this request: `nonce` is the one this request sent (a recorded answer,
  replayed later, carries another), and `status` / `updated_after` are what was asked
  (an answer listing pending orders cannot be passed off as the list of cancelled ones);
- it is not older than the newest answer already taken, less the clock skew
  (`high_water`): a monotonic mark that holds across restarts, so an old answer cannot
  undo a newer one even if the agent's clock is wrong.

Refusals carry the contract's reason codes: the verifier's, or `replayed` for an answer
to another request or an older one, `malformed` for a bad `sync` claim.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent.rules.passes import Claims, PassVerifier, Rejected
from agent.rules.reasons import Reason

SYNC_SCOPE = "orders.sync"
SYNC_SCOPES = frozenset({SYNC_SCOPE})


@dataclass(frozen=True, slots=True)
class SyncAnswer:
    """A verified order-sync answer."""

    orders: list[Any]
    now: str | None  # the hub's clock when it answered (the next updated_after)
    iat: float  # when the hub signed it: fresh (nonce-bound), so a trusted time source
    kid: str
    jti: str


def looks_signed(text: str) -> bool:
    """A compact JWS is three base64url parts; anything else (JSON, HTML) is not signed."""
    parts = text.split(".")
    return len(parts) == 3 and all(parts[:2]) and not any(c.isspace() for c in text)


def verify_sync(
    verifier: PassVerifier,
    token: str,
    *,
    store: str,
    now: float,
    nonce: str,
    status: Sequence[str],
    updated_after: str | None,
    high_water: float | None,
) -> SyncAnswer | Rejected:
    checked = verifier.verify(token, store=store, now=now, scopes=SYNC_SCOPES)
    if isinstance(checked, Rejected):
        return checked
    return check_sync(
        checked,
        nonce=nonce,
        status=status,
        updated_after=updated_after,
        high_water=high_water,
        skew=verifier.skew,
    )


def check_sync(
    c: Claims,
    *,
    nonce: str,
    status: Sequence[str],
    updated_after: str | None,
    high_water: float | None,
    skew: float,
) -> SyncAnswer | Rejected:
    def no(reason: Reason, detail: str) -> Rejected:
        return Rejected(reason, detail, sub=c.sub, scope=c.scope, jti=c.jti)

    sync = c.extra.get("sync")
    if not isinstance(sync, dict):
        return no(Reason.MALFORMED, "claim 'sync' is missing")
    if sync.get("nonce") != nonce:
        return no(Reason.REPLAYED, "the answer is to another request (nonce differs)")
    if sync.get("status") != list(status) or sync.get("updated_after") != updated_after:
        return no(
            Reason.REPLAYED,
            f"the answer is to another question (status {sync.get('status')!r}, "
            f"updated_after {sync.get('updated_after')!r})",
        )
    if high_water is not None and c.iat + skew < high_water:
        return no(
            Reason.REPLAYED, f"signed {high_water - c.iat:.0f} s before an answer already taken"
        )
    orders = sync.get("orders")
    if not isinstance(orders, list):
        return no(Reason.MALFORMED, "claim 'sync.orders' is not a list")
    now = sync.get("now")
    return SyncAnswer(
        orders=orders,
        now=now if isinstance(now, str) else None,
        iat=c.iat,
        kid=c.kid,
        jti=c.jti,
    )


def next_high_water(high_water: float | None, iat: float, now: float, skew: float) -> float:
    """The mark after taking an answer signed at `iat`. Never past the agent's own clock
    plus the skew: a hub whose clock ran a day ahead must not lock out its own answers
    for a day once its clock is put right."""
    mark = min(iat, now + skew)
    return mark if high_water is None else max(high_water, mark)
