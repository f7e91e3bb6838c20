"""GS1 barcodes (EAN-8, EAN-13, UPC-A): is the check digit right."""

from __future__ import annotations


def gtin_check_digit_ok(digits: str) -> bool:
    """GS1 check digit: weights 3,1,3,1... from the right, excluding the check digit."""
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check
