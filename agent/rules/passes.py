"""Offline verification of passes (CONTRACTS section 2): EdDSA JWTs from the hub.

Signature checking is PyJWT's; claim checks are ours, against the agent's own clock (a
Pi's wall clock may be wrong, see agent/clock.py) and mapped to exactly one reason code.
Single use (replay) is not checked here: it needs the journal's memory of used ids and
is a rule of its own in agent/rules/decide.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.rules.reasons import Reason

ISSUER = "shopgate-hub"
DOOR_SCOPES = frozenset({"entry", "pickup", "staff"})


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
    return float(v)


def _str(claims: Mapping[str, object], name: str) -> str:
    v = claims.get(name)
    if not isinstance(v, str) or not v:
        raise ValueError(f"claim {name!r} must be a non-empty string")
    return v


class PassVerifier:
    """Verifies a token's signature with the configured keys and checks its claims."""

    def __init__(self, keys: Mapping[str, Ed25519PublicKey], *, skew_seconds: float) -> None:
        self._keys = dict(keys)
        self.skew = skew_seconds
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
        if key is None:
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
        return check_claims(claims, store=store, now=now, skew=self.skew, scopes=scopes)


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
    c: Claims, *, store: str, now: float, skew: float, scopes: frozenset[str]
) -> Claims | Rejected:
    def no(reason: Reason, detail: str) -> Rejected:
        return Rejected(reason, detail, sub=c.sub, scope=c.scope, jti=c.jti)

    if now > c.exp + skew:
        return no(Reason.EXPIRED, f"expired {now - c.exp:.0f} s ago")
    if c.nbf is not None and now < c.nbf - skew:
        return no(Reason.NOT_YET_VALID, f"valid in {c.nbf - now:.0f} s")
    if c.store != store:
        return no(Reason.WRONG_STORE, f"for store {c.store!r}")
    if c.scope not in scopes:
        return no(Reason.WRONG_SCOPE, f"scope {c.scope!r} is not accepted here")
    if c.scope == "pickup" and not c.orders:
        return no(Reason.MALFORMED, "a pickup pass names no orders")
    return c
