"""Entry question answers, stored hashed (scrypt) so the config never holds them in clear.

An answer is normalised (Unicode NFKC, trimmed, inner whitespace removed, case folded)
before hashing, so "  Yes " and "yes" match and full-width digits typed on a phone
keyboard equal ASCII ones.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import unicodedata

_N, _R, _P = 2**14, 8, 1


def normalize(answer: str) -> str:
    return "".join(unicodedata.normalize("NFKC", answer).split()).casefold()


def _scrypt(text: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(normalize(text).encode(), salt=salt, n=n, r=r, p=p, dklen=32)


def hash_answer(answer: str) -> str:
    salt = os.urandom(16)
    digest = _scrypt(answer, salt, _N, _R, _P)
    b64 = base64.urlsafe_b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def answer_matches(answer: str, hashes: list[str]) -> bool:
    for stored in hashes:
        try:
            _, n, r, p, salt, digest = stored.split("$")
            want = base64.urlsafe_b64decode(digest)
            got = _scrypt(answer, base64.urlsafe_b64decode(salt), int(n), int(r), int(p))
        except ValueError:
            continue
        if hmac.compare_digest(got, want):
            return True
    return False
