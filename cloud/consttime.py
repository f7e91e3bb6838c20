"""Comparing a signature or token a caller sent with the one expected, in constant time.

`hmac.compare_digest` compares two `str` only when both are ASCII and raises TypeError
otherwise: a caller sending `sig=é` would turn a refusal into a 500 (and tell apart
"ASCII" from "not" by the answer). Both sides are compared as UTF-8 bytes instead;
"surrogatepass" keeps text that came from undecodable bytes (aiohttp reads headers with
surrogateescape) comparable rather than raising. Pure; no imports from the hub.
"""

from __future__ import annotations

import hmac


def _raw(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")


def equal(given: str | bytes, expected: str | bytes) -> bool:
    """Whether `given` is exactly `expected`; the time taken does not depend on where they
    first differ, and no input raises."""
    return hmac.compare_digest(_raw(given), _raw(expected))
