"""The owner dashboard's session: a merchant token exchanged for a signed cookie.

The cookie is an HS256 JWT (PyJWT) under a key derived from the hub's signing key, so
every hub process sharing that key accepts the others' sessions and no new secret is
configured. It names the merchant and carries a tag of the merchant's token hash: a token
changed in hub.yaml (or the merchant removed) ends every session made with the old one at
the next request. The store list is read from the database on every request, never from
the cookie.

Forms carry a CSRF token derived from the session's nonce (before login: from a nonce
cookie of its own); together with SameSite=Strict cookies, a post from another site is
refused twice over.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import jwt

from cloud import consttime

AUDIENCE = "shopgate-dashboard"
SESSION_COOKIE = "sg_dash"
LOGIN_COOKIE = "sg_dash_login"
SESSION_TTL_S = 12 * 3600
TOKEN_TAG_HEX = 16


class SessionError(Exception):
    """A cookie that does not make a session (absent, expired, forged, stale)."""


@dataclass(frozen=True, slots=True)
class Session:
    merchant: str
    token_tag: str
    nonce: str
    expires: int


def token_tag(token_hash: str) -> str:
    """What the cookie keeps of the merchant's token hash: enough to notice a new token."""
    return hashlib.sha256(f"session:{token_hash}".encode()).hexdigest()[:TOKEN_TAG_HEX]


class SessionKeys:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def mint(self, merchant: str, token_hash: str, *, now: float | None = None) -> str:
        iat = int(time.time() if now is None else now)
        claims = {
            "aud": AUDIENCE,
            "sub": merchant,
            "tk": token_tag(token_hash),
            "n": secrets.token_urlsafe(16),
            "iat": iat,
            "exp": iat + SESSION_TTL_S,
        }
        return jwt.encode(claims, self._key, algorithm="HS256")

    def read(self, cookie: str | None) -> Session:
        if not cookie:
            raise SessionError("no session")
        try:
            c = jwt.decode(
                cookie,
                self._key,
                algorithms=["HS256"],
                audience=AUDIENCE,
                options={"require": ["exp", "iat", "aud", "sub"]},
            )
        except jwt.PyJWTError as e:
            raise SessionError(f"bad session: {e}") from None
        merchant, tag, nonce = c.get("sub"), c.get("tk"), c.get("n")
        if not all(isinstance(v, str) and v for v in (merchant, tag, nonce)):
            raise SessionError("bad session: missing claims")
        return Session(str(merchant), str(tag), str(nonce), int(c["exp"]))

    def csrf(self, nonce: str) -> str:
        """The forms' token for a session (or login) nonce."""
        return hmac.new(self._key, f"csrf:{nonce}".encode(), hashlib.sha256).hexdigest()[:32]

    def csrf_ok(self, nonce: str | None, given: object) -> bool:
        if not nonce or not isinstance(given, str) or not given:
            return False
        return consttime.equal(given, self.csrf(nonce))
