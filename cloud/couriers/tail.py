"""The last 4 digits of a platform order number: what every rider app shows, and what
the courier types to prove the order is theirs."""

from __future__ import annotations

import hmac

TAIL_DIGITS = 4


def tail_of(platform_order_id: str) -> str:
    """The last 4 digits of the order number (letters and separators skipped)."""
    digits = "".join(c for c in platform_order_id if c.isascii() and c.isdigit())
    return digits[-TAIL_DIGITS:]


def normalize_tail(text: str) -> str | None:
    """The 4 digits typed, or None when it is not 4 digits (spaces allowed around)."""
    t = text.strip()
    return t if len(t) == TAIL_DIGITS and t.isascii() and t.isdigit() else None


def tail_matches(platform_order_id: str, typed: str) -> bool:
    want = tail_of(platform_order_id)
    # Constant time: the comparison must not tell how many leading digits were right.
    return len(want) == TAIL_DIGITS and hmac.compare_digest(want.encode(), typed.encode())
