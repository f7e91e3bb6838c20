"""The entry form's token: which question was asked, to whom, until when.

The page hands it out with the question and takes it back with the answer, so the answer
is checked against the question asked (not one the client picks), within its time, and
only from the browser that was asked (the visitor cookie; a cross-site post lacks it,
which makes the token the form's CSRF token as well).

It is an HS256 JWT (PyJWT) under a key derived from the hub's signing key, so every hub
process sharing that key accepts the others' tokens and no new secret is configured. The
door scanners accept EdDSA passes only, so a form token is never a pass.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cloud import consttime

AUDIENCE = "shopgate-entry-form"


class FormTokenError(Exception):
    """A token that cannot be used; `expired` tells a late answer from a bad token."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True, slots=True)
class AskedQuestion:
    store: str
    door: str
    index: int  # in the store's question bank; -1 when the store asks none


def derive_key(signing_key: Ed25519PrivateKey, purpose: str) -> bytes:
    """A 32-byte key for `purpose`, derived (HKDF-SHA256) from the hub's signing key."""
    raw = signing_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    info = f"shopgate-hub {purpose} v1".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(raw)


def question_digest(question: str) -> str:
    # Binds the token to the question's text: a bank edited meanwhile (an index now naming
    # another question) makes the token stale instead of checking the wrong answers.
    return hashlib.sha256(question.encode()).hexdigest()[:16]


class FormTokens:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def visitor_tag(self, visitor: str) -> str:
        return hmac.new(self._key, f"visitor:{visitor}".encode(), hashlib.sha256).hexdigest()[:32]

    def mint(
        self,
        asked: AskedQuestion,
        question: str,
        visitor: str,
        *,
        ttl_seconds: int,
        now: float | None = None,
    ) -> str:
        iat = int(time.time() if now is None else now)
        claims = {
            "aud": AUDIENCE,
            "store": asked.store,
            "door": asked.door,
            "q": asked.index,
            "qh": question_digest(question),
            "v": self.visitor_tag(visitor),
            "iat": iat,
            "exp": iat + ttl_seconds,
        }
        return jwt.encode(claims, self._key, algorithm="HS256")

    def verify(
        self,
        token: str,
        *,
        store: str,
        door: str,
        visitor: str | None,
        bank: list[str],
    ) -> AskedQuestion:
        """The question the token was minted for, or FormTokenError."""
        options = {"require": ["exp", "iat", "aud"], "verify_iat": False}
        try:
            c = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=AUDIENCE,
                options=options,  # type: ignore[arg-type]  # PyJWT types it as its Options TypedDict
            )
        except jwt.ExpiredSignatureError:
            raise FormTokenError("the question expired", expired=True) from None
        except jwt.PyJWTError as e:
            raise FormTokenError(f"bad form token: {e}") from None
        if c.get("store") != store or c.get("door") != door:
            raise FormTokenError("the form token is for another door")
        if visitor is None or not consttime.equal(str(c.get("v", "")), self.visitor_tag(visitor)):
            raise FormTokenError("the form token is for another visitor")
        index = c.get("q")
        if not isinstance(index, int) or isinstance(index, bool):
            raise FormTokenError("bad form token: no question")
        if index == -1 and not bank:
            return AskedQuestion(store, door, -1)
        if not 0 <= index < len(bank) or c.get("qh") != question_digest(bank[index]):
            # The bank changed since the question was asked: ask again.
            raise FormTokenError("the question changed", expired=True)
        return AskedQuestion(store, door, index)
