"""A self-checkout cart: product barcodes in, lines and a total out. Pure, no I/O.

Money is counted in fen (integer cents) so that 0.1 + 0.2 is never 0.30000000000000004;
it leaves as yuan with two decimals, as events and the hub carry it (3.5 = ¥3.50).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from storerules.gtin import gtin_check_digit_ok


def yuan(fen: int) -> float:
    return round(fen / 100, 2)


def to_fen(price: Any) -> int | None:
    """A catalog price in yuan -> fen; None when it is no price (missing, negative, text)."""
    if isinstance(price, bool) or not isinstance(price, int | float | str):
        return None
    try:
        fen = Decimal(str(price)) * 100
    except InvalidOperation:
        return None
    if fen < 0 or fen != fen.to_integral_value():
        return None
    return int(fen)


def product_barcode(line: str) -> str | None:
    """The line as an EAN-8, UPC-A or EAN-13 with a valid check digit, else None."""
    text = line.strip()
    if text.isascii() and text.isdigit() and len(text) in (8, 12, 13):
        return text if gtin_check_digit_ok(text) else None
    return None


def find_product(
    catalog: Mapping[str, Mapping[str, Any]], barcode: str
) -> Mapping[str, Any] | None:
    """A UPC-A is the EAN-13 with a leading 0: a catalog may list either spelling."""
    for form in (
        barcode,
        "0" + barcode if len(barcode) == 12 else None,
        barcode[1:] if len(barcode) == 13 and barcode[0] == "0" else None,
    ):
        if form is not None and form in catalog:
            return catalog[form]
    return None


@dataclass(slots=True)
class CartLine:
    barcode: str
    name: str
    price_fen: int
    qty: int = 1

    def to_item(self) -> dict[str, Any]:
        return {
            "barcode": self.barcode,
            "name": self.name,
            "qty": self.qty,
            "price": yuan(self.price_fen),
        }


@dataclass(slots=True)
class Cart:
    id: str
    lines: dict[str, CartLine] = field(default_factory=dict)

    def add(self, barcode: str, name: str, price_fen: int) -> CartLine:
        """One more of the product (a second scan adds to its line)."""
        line = self.lines.get(barcode)
        if line is None:
            line = self.lines[barcode] = CartLine(barcode, name, price_fen)
        else:
            line.qty += 1
        return line

    @property
    def total_fen(self) -> int:
        return sum(line.price_fen * line.qty for line in self.lines.values())

    @property
    def count(self) -> int:
        return sum(line.qty for line in self.lines.values())

    def items(self) -> list[dict[str, Any]]:
        return [line.to_item() for line in self.lines.values()]
