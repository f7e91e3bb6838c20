"""What a scanned line is, by its shape (CONTRACTS section 2).

A JWT is a pass; digits as long as the pickup code length are a courier pickup code
(checked before barcodes, so a code never reads as a product); `<day number>*<last 4
digits of the platform order number>` (`27*4821`, a trailing `#` allowed: keypads send
one) is a courier naming their order (CONTRACTS section 8); an EAN-8, EAN-13 or UPC-A
with a valid check digit is a product; anything else is malformed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from storerules.gtin import gtin_check_digit_ok

_JWT = re.compile(r"^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
_DAY_TAIL = re.compile(r"^([0-9]{1,5})\*([0-9]{4})#?$")
MAX_LINE = 4096


@dataclass(frozen=True, slots=True)
class PassScan:
    token: str


@dataclass(frozen=True, slots=True)
class PickupCodeScan:
    code: str


@dataclass(frozen=True, slots=True)
class OrderTailScan:
    """A courier's order by its number of the day and the last 4 digits of its number."""

    day_seq: int
    tail: str


@dataclass(frozen=True, slots=True)
class ProductScan:
    barcode: str


@dataclass(frozen=True, slots=True)
class MalformedScan:
    why: str


Scan = PassScan | PickupCodeScan | OrderTailScan | ProductScan | MalformedScan


def classify(line: str, *, code_length: int) -> Scan:
    text = line.strip()
    if not text:
        return MalformedScan("empty line")
    if len(text) > MAX_LINE:
        return MalformedScan(f"line of {len(text)} characters")
    if _JWT.match(text):
        return PassScan(text)
    if m := _DAY_TAIL.match(text):
        day_seq = int(m.group(1))
        if day_seq == 0:
            return MalformedScan("order number of the day 0")
        return OrderTailScan(day_seq, m.group(2))
    if text.isascii() and text.isdigit():
        if len(text) == code_length:
            return PickupCodeScan(text)
        if len(text) in (8, 12, 13):
            if gtin_check_digit_ok(text):
                return ProductScan(text)
            return MalformedScan("barcode with a wrong check digit")
        return MalformedScan(f"{len(text)} digits: neither a pickup code nor a barcode")
    return MalformedScan("neither a pass, a pickup code nor a barcode")
