"""Offline verification of passes (CONTRACTS section 2): EdDSA JWTs from the hub.

Signature checking is PyJWT's; claim checks are ours, against the agent's own clock (a
Pi's wall clock may be wrong, see agent/clock.py) and mapped to exactly one reason code.
Single use (replay) is not checked here: it needs the journal's memory of used ids and
is a rule of its own in agent/rules/decide.py.

Time, beyond `exp` and `nbf` (docs/architecture.md "Durability and time"):
- `iat` more than the skew ahead of the agent's time is `not_yet_valid`: the hub never
  signs in its future, so either its clock or ours is wrong, and ours is the one checked;
- `exp - iat` longer than the scope's cap (storerules/lifetimes.py, lowered by
  access.max_lifetime_seconds) is `malformed`: the hub mints no such token;
- with a clock, a token that passes every check but time tells the clock the hub's time
  (its `iat`) before the time checks run, so a Pi that booted behind catches up on the
  first fresh pass; and after a reboot, until the hub's time has settled the clock, a
  token signed before the time the agent resumed from is `expired` (it may have expired
  while the Pi was off).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.rules.reasons import Reason
from storerules.lifetimes import MAX_LIFETIME_S

if TYPE_CHECKING:
    from agent.clock import Clock

ISSUER = "shopgate-hub"
DOOR_SCOPES = frozenset({"entry", "pickup", "staff"})
# What a signed time came with, as `clock.jumped` names it for the operator.
_TIME_SOURCES = {"ops": "command", "orders.sync": "order_sync"}


@dataclass(frozen=True, slots=True)
class Claims:
    """A pass whose signature and time window held."""

    kid: str
    store: str
    sub: str
    scope: str
    jti: str
    iat: float
    exp: float
    nbf: float | None
    door: str | None
    orders: tuple[str, ...]
    extra: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: Reason
    detail: str
    sub: str | None = None
    scope: str | None = None
    jti: str | None = None


def _num(claims: Mapping[str, object], name: str, *, required: bool) -> float | None:
    v = claims.get(name)
    if v is None and not required:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"claim {name!r} must be a number")
    # Python's JSON parser takes NaN and Infinity, which no comparison would refuse.
    if not math.isfinite(v):
        raise ValueError(f"claim {name!r} must be a finite number")
    return float(v)


def _str(claims: Mapping[str, object], name: str) -> str:
    v = claims.get(name)
    if not isinstance(v, str) or not v:
        raise ValueError(f"claim {name!r} must be a non-empty string")
    return v


class PassVerifier:
    """Verifies a token's signature with the configured keys and checks its claims.

    With a `clock`, every token that verifies tells it the hub's time (see the module's
    docstring) and is checked at the clock's time after that, not at `now`."""

    def __init__(
        self,
        keys: Mapping[str, Ed25519PublicKey],
        *,
        skew_seconds: float,
        clock: Clock | None = None,
        max_lifetime: Mapping[str, float] = MAX_LIFETIME_S,
    ) -> None:
        self._keys = dict(keys)
        self.skew = skew_seconds
        self.clock = clock
        self.max_lifetime = dict(max_lifetime)
        self._jws = jwt.PyJWS(algorithms=["EdDSA"])

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def replace_keys(self, keys: Mapping[str, Ed25519PublicKey]) -> None:
        self._keys = dict(keys)

    def verify(
        self, token: str, *, store: str, now: float, scopes: frozenset[str] = DOOR_SCOPES
    ) -> Claims | Rejected:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as e:
            return Rejected(Reason.MALFORMED, f"not a JWT: {e}")
        kid = header.get("kid")
        if header.get("alg") != "EdDSA":
            # Refusing other algorithms here is what stops alg-confusion forgeries.
            return Rejected(Reason.BAD_SIGNATURE, f"algorithm {header.get('alg')!r} is not EdDSA")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None or not isinstance(kid, str):
            return Rejected(Reason.UNKNOWN_KEY, f"unknown key id {kid!r}")
        try:
            payload = self._jws.decode(token, key, algorithms=["EdDSA"])
        except jwt.InvalidSignatureError:
            return Rejected(Reason.BAD_SIGNATURE, "signature does not verify")
        except jwt.PyJWTError as e:
            return Rejected(Reason.MALFORMED, f"undecodable: {e}")
        try:
            claims = _parse_claims(kid, payload)
        except ValueError as e:
            return Rejected(Reason.MALFORMED, str(e))
        doubts_before = None
        if self.clock is not None:
            # Only a token this agent would honour on every count but time may move its
            # clock: a wrong store's, a wrong scope's or an overlong one's iat may not.
            problem = _timeless_problem(claims, store=store, scopes=scopes, caps=self.max_lifetime)
            if problem is None:
                self.clock.observe_signed_time(claims.iat, _TIME_SOURCES.get(claims.scope, "pass"))
            now = max(now, self.clock.now())
            doubts_before = self.clock.doubts_before()
        return check_claims(
            claims,
            store=store,
            now=now,
            skew=self.skew,
            scopes=scopes,
            max_lifetime=self.max_lifetime,
            doubts_before=doubts_before,
        )


def _parse_claims(kid: str, payload: bytes) -> Claims:
    try:
        c = json.loads(payload)
    except ValueError as e:
        raise ValueError("payload is not JSON") from e
    if not isinstance(c, dict):
        raise ValueError("payload is not a JSON object")
    if c.get("iss") != ISSUER:
        raise ValueError(f"issuer {c.get('iss')!r} is not {ISSUER!r}")
    orders = c.get("orders", [])
    if not isinstance(orders, list) or not all(isinstance(o, str) and o for o in orders):
        raise ValueError("claim 'orders' must be a list of order ids")
    door = c.get("door")
    if door is not None and not isinstance(door, str):
        raise ValueError("claim 'door' must be a string")
    known = {"iss", "aud", "sub", "scope", "jti", "iat", "exp", "nbf", "door", "orders"}
    return Claims(
        kid=kid,
        store=_str(c, "aud"),
        sub=_str(c, "sub"),
        scope=_str(c, "scope"),
        jti=_str(c, "jti"),
        iat=_num(c, "iat", required=True) or 0.0,
        exp=_num(c, "exp", required=True) or 0.0,
        nbf=_num(c, "nbf", required=False),
        door=door,
        orders=tuple(orders),
        extra={k: v for k, v in c.items() if k not in known},
    )


def check_claims(
    c: Claims,
    *,
    store: str,
    now: float,
    skew: float,
    scopes: frozenset[str],
    max_lifetime: Mapping[str, float] = MAX_LIFETIME_S,
    doubts_before: float | None = None,
) -> Claims | Rejected:
    """The claims' verdict at time `now`. `doubts_before`: the clock's `doubts_before()`
    (tokens signed before it may have expired while the Pi was off)."""

    def no(reason: Reason, detail: str) -> Rejected:
        return Rejected(reason, detail, sub=c.sub, scope=c.scope, jti=c.jti)

    if now > c.exp + skew:
        return no(Reason.EXPIRED, f"expired {now - c.exp:.0f} s ago")
    if doubts_before is not None and c.iat < doubts_before:
        return no(
            Reason.EXPIRED,
            "issued before this agent restarted after a reboot; it may have expired while "
            "the agent was off (a fresh pass from the hub settles the agent's clock)",
        )
    if c.nbf is not None and now < c.nbf - skew:
        return no(Reason.NOT_YET_VALID, f"valid in {c.nbf - now:.0f} s")
    if c.iat > now + skew:
        return no(
            Reason.NOT_YET_VALID,
            f"issued {c.iat - now:.0f} s in the future: the hub's clock or this agent's is wrong",
        )
    untimely = _timeless_problem(c, store=store, scopes=scopes, caps=max_lifetime)
    if untimely is not None:
        return no(*untimely)
    return c


def _timeless_problem(
    c: Claims, *, store: str, scopes: frozenset[str], caps: Mapping[str, float]
) -> tuple[Reason, str] | None:
    """What is wrong with the claims whatever the time, or None."""
    if c.store != store:
        return Reason.WRONG_STORE, f"for store {c.store!r}"
    if c.scope not in scopes:
        return Reason.WRONG_SCOPE, f"scope {c.scope!r} is not accepted here"
    if c.scope == "pickup" and not c.orders:
        return Reason.MALFORMED, "a pickup pass names no orders"
    life = c.exp - c.iat
    if life <= 0:
        return Reason.MALFORMED, "exp is not after iat"
    cap = caps.get(c.scope, 0)
    if life > cap:
        return (
            Reason.MALFORMED,
            f"lives {life:.0f} s; a {c.scope} token may live at most {cap:.0f} s "
            f"(access.max_lifetime_seconds.{c.scope})",
        )
    return None
